// The SDK posts to a first-party path (ad-blockers leave it alone); Next.js forwards it to the
// thorbis-obs agent's collector. THORBIS_AGENT_URL is read when the app is built.
const agent = process.env.THORBIS_AGENT_URL || "http://127.0.0.1:9464";

/** @type {import('next').NextConfig} */
const config = {
  async rewrites() {
    return [{ source: "/v1/rum", destination: `${agent}/v1/rum` }];
  },
};

export default config;
