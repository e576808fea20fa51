// A route handler that throws: Next.js answers 500 and records the exception on the request's
// span, which the agent turns into an error group (service, route, trace id).
export const dynamic = "force-dynamic";

function total(invoice) {
  return invoice.lines.reduce((sum, line) => sum + line.amount, 0);
}

export async function GET(_request, { params }) {
  const { id } = await params;
  const invoice = id === "0" ? null : { lines: [] };
  return Response.json({ id, total: total(invoice) });
}
