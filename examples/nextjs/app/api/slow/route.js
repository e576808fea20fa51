// A route that answers after SLOW_MS milliseconds (default 2200: past the spec's 2 s
// high-response-time threshold).
export const dynamic = "force-dynamic";

export async function GET() {
  const ms = Number(process.env.SLOW_MS || 2200);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return Response.json({ waited: ms });
}
