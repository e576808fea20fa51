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
      // Session replay at the spec's Sentry rates: 10% of sessions recorded throughout, the
      // others keep their last 60 s and send them when an error is captured. Private by
      // default (inputs and text masked, [data-private] left out). The build can set both
      // rates (the example's test records every session; the replay benchmark turns it off).
      replaysSessionSampleRate: Number(process.env.NEXT_PUBLIC_THORBIS_REPLAYS_SESSION_RATE ?? 0.1),
      replaysOnErrorSampleRate: Number(process.env.NEXT_PUBLIC_THORBIS_REPLAYS_ON_ERROR_RATE ?? 1),
    });
  }, []);
  return null;
}
