// @thorbis/obs/react: a React error boundary that reports what it catches. A module of its own,
// so the core entry (and its size) stays without React.
import { Component } from "react";
import { captureException } from "./index.js";

/**
 * Renders `fallback` (an element, or a function of `{ error, resetError }`) when a child
 * throws while rendering, reports the error once with the tag `errorBoundary` (the `name` prop,
 * default `ErrorBoundary`) and the component stack, and renders the children again when
 * `resetError` is called (then `onReset` runs).
 */
export class ErrorBoundary extends Component {
  constructor(props) {
    super(props);
    this.state = { caught: false, error: null };
    this.resetError = () => {
      this.setState({ caught: false, error: null });
      this.props.onReset?.();
    };
  }

  static getDerivedStateFromError(error) {
    return { caught: true, error };
  }

  componentDidCatch(error, info) {
    const stack = info && typeof info.componentStack == "string" ? info.componentStack.trim().slice(0, 2000) : undefined;
    captureException(error, { ...this.props.context, errorBoundary: this.props.name || "ErrorBoundary", componentStack: stack });
    this.props.onError?.(error, info);
  }

  render() {
    if (!this.state.caught) return this.props.children;
    const f = this.props.fallback;
    return typeof f == "function" ? f({ error: this.state.error, resetError: this.resetError }) : (f ?? null);
  }
}
