"use client";
// The whole setup a Next.js app needs: one client component in the root layout. Importing
// @thorbis/obs touches neither window nor document, so server rendering is unaffected; the
// wasm loads in the browser only, after hydration.
import { useEffect } from "react";
import { init } from "@thorbis/obs";

export function ThorbisObs() {
  useEffect(() => {
    init({
      endpoint: "/v1/rum",
      // The browser app is a service of its own beside the Next.js server's
      // ("thorbis-nextjs-example", instrumentation.js): a trace shows both.
      service: "thorbis-web",
      env: process.env.NODE_ENV,
      // The release the build's source maps are uploaded under (see README "Source maps").
      version: process.env.NEXT_PUBLIC_THORBIS_RELEASE || "dev",
      sessionSampleRate: 100, // the spec samples 10% of sessions in production
      flushIntervalMs: 1000,
    });
  }, []);
  return null;
}
