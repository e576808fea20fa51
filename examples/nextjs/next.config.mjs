// The SDK posts to a first-party path (ad-blockers leave it alone); Next.js forwards it to the
// thorbis-obs agent's collector. THORBIS_AGENT_URL is read when the app is built.
const agent = process.env.THORBIS_AGENT_URL || "http://127.0.0.1:9464";

/** @type {import('next').NextConfig} */
const config = {
  // Source maps of the browser bundles, uploaded to the agent after the build
  // (`thorbis-obs sourcemaps upload --release R --url-prefix "~/_next/static" .next/static`)
  // so browser errors read as written. Next.js serves them too; keep them off a public
  // deployment's server or behind auth if the source is private.
  productionBrowserSourceMaps: true,
  // Debug ids in the bundles and their maps (TC39's proposal): the SDK sends each script's id
  // with an error, and the agent finds the script's map by it, whatever release it was
  // uploaded under.
  turbopack: { debugIds: true },
  async rewrites() {
    return [
      { source: "/v1/rum", destination: `${agent}/v1/rum` },
      // Session replay's chunks (the SDK derives the path from the RUM endpoint).
      { source: "/v1/replay", destination: `${agent}/v1/replay` },
    ];
  },
};

export default config;
