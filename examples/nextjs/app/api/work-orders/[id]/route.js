// A route handler: its span carries http.route "/api/work-orders/[id]".
export const dynamic = "force-dynamic";

export async function GET(_request, { params }) {
  const { id } = await params;
  return Response.json({ id, status: "open" });
}
