"use client";
// The App Router's boundary for a route segment: whatever a page throws that no nearer
// boundary caught is reported through the SDK, once per error, then the user may retry.
import { useEffect } from "react";
import { captureException, flush } from "@thorbis/obs";

export default function RouteError({ error, reset }) {
  useEffect(() => {
    captureException(error, { errorBoundary: "app/error.jsx" });
    flush();
  }, [error]);
  return (
    <div id="route-error">
      <h2>Something went wrong.</h2>
      <button onClick={() => reset()}>Try again</button>
    </div>
  );
}
