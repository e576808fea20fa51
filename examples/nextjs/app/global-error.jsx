"use client";
// The root layout's own boundary: it replaces the whole document, so it renders <html> and
// <body>, and reports the error the same way.
import { useEffect } from "react";
import { captureException, flush } from "@thorbis/obs";

export default function GlobalError({ error, reset }) {
  useEffect(() => {
    captureException(error, { errorBoundary: "app/global-error.jsx" });
    flush();
  }, [error]);
  return (
    <html lang="en">
      <body>
        <h2>Something went wrong.</h2>
        <button onClick={() => reset()}>Try again</button>
      </body>
    </html>
  );
}
