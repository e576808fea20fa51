import { Component, ErrorInfo, ReactNode } from "react";
import { ErrorContext } from "./index";

export interface FallbackProps {
  error: unknown;
  /** Renders the children again (and calls `onReset`). */
  resetError(): void;
}

export interface ErrorBoundaryProps {
  children?: ReactNode;
  /** What to render instead of the children that threw. */
  fallback?: ReactNode | ((props: FallbackProps) => ReactNode);
  /** Called after `resetError`. */
  onReset?: () => void;
  /** Called after the error is reported. */
  onError?: (error: unknown, info: ErrorInfo) => void;
  /** The `errorBoundary` tag of the reported error (default `ErrorBoundary`). */
  name?: string;
  /** More tags of the reported error. */
  context?: ErrorContext;
}

/** Catches render errors of its children, reports each once, and renders `fallback` until reset. */
export class ErrorBoundary extends Component<ErrorBoundaryProps, { caught: boolean; error: unknown }> {}
