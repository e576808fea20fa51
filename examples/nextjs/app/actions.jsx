"use client";
import { useState } from "react";
import { track, flush } from "@thorbis/obs";

export function Actions() {
  const [order, setOrder] = useState(null);
  return (
    <>
      <button
        id="create"
        onClick={() => {
          track("work_order_created", { workOrderId: "wo_42", industry: "home-services" });
          flush();
        }}
      >
        Create work order
      </button>
      {/* A same-origin request: the SDK sends it with `traceparent`, so the route handler's
          spans join the browser's span in one trace. */}
      <button
        id="load"
        onClick={async () => {
          const response = await fetch("/api/work-orders/42");
          setOrder(await response.json());
        }}
      >
        Load work order
      </button>
      {order && <p id="loaded">Work order {order.id}: {order.status}</p>}
    </>
  );
}
