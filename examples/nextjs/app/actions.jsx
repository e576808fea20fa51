"use client";
import { track, flush } from "@thorbis/obs";

export function Actions() {
  return (
    <button
      id="create"
      onClick={() => {
        track("work_order_created", { workOrderId: "wo_42", industry: "home-services" });
        flush();
      }}
    >
      Create work order
    </button>
  );
}
