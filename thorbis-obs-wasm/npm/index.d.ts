/** Properties of a business event, journey step or conversion: plain values only. */
export type Properties = Record<string, string | number | boolean>;

/** Performance budgets in KB (the spec's defaults: JS 170, CSS 50, images 500, fonts 100). */
export interface Budgets {
  javascript?: number;
  css?: number;
  images?: number;
  fonts?: number;
}

/** An event as it is sent (a JSON object of the wire schema, version 1). */
export interface SdkEvent {
  type: "vital" | "action" | "business" | "journey" | "conversion" | "error" | "timing" | "resource" | "long_task" | "span";
  at: number;
  [field: string]: unknown;
}

export interface InitOptions {
  /** Where batches go: a first-party path by default, so ad-blockers leave it alone. Default "/v1/rum". */
  endpoint?: string;
  /** Client token, sent as the `token` query parameter. */
  clientToken?: string;
  /** Service name. Default "browser". */
  service?: string;
  /** Environment. Default "production". */
  env?: string;
  /** Release version. */
  version?: string;
  /** Percent of sessions that send RUM data (errors are always sent). Default 100; the spec uses 10. */
  sessionSampleRate?: number;
  /** Click actions. Default true. */
  trackInteractions?: boolean;
  /** Resource timings checked against the budgets. Default true. */
  trackResources?: boolean;
  /** Long tasks. Default true. */
  trackLongTasks?: boolean;
  /** "mask-user-input" (default): input values never leave the page; "mask": action names too; "allow". */
  privacy?: "mask-user-input" | "mask" | "allow";
  /** Patterns whose matches are replaced by "[redacted]" in URLs and messages. */
  scrubbers?: RegExp[];
  /** Budgets in KB. */
  budgets?: Budgets;
  /** "pending": nothing is sent until setConsent(true). Default "granted". */
  consent?: "granted" | "pending";
  /** May edit an event (return it) or drop it (return null or false). */
  beforeSend?: (event: SdkEvent) => SdkEvent | null | false | undefined;
  /** Flush interval in ms. Default 10000. */
  flushIntervalMs?: number;
  /**
   * Where `fetch` and `XMLHttpRequest` calls carry a W3C `traceparent` header (and become spans
   * of a trace): always the page's own origin, plus URLs that start with one of these strings
   * or match one of these RegExps, e.g. `["https://api.thorbis.com/"]`. Other origins never see
   * the header. Default: the page's origin only.
   */
  tracePropagationTargets?: Array<string | RegExp>;
  /** Trace fetch and XMLHttpRequest calls. Default true. */
  tracing?: boolean;
  /** Share (0..1) of sessions recorded for replay from the start, as Sentry's option. Default 0. */
  replaysSessionSampleRate?: number;
  /** Share (0..1) of the other sessions whose last 60 s are kept in memory and sent when an error is captured (then recorded to the end). Default 0. */
  replaysOnErrorSampleRate?: number;
  /** Replay privacy: private by default. */
  replay?: ReplayOptions;
}

/** What a replay may show; every opt-out exposes what it names. */
export interface ReplayOptions {
  /** Where chunks go. Default: the RUM endpoint with /v1/rum replaced by /v1/replay. */
  endpoint?: string;
  /** false: input values are recorded as typed (passwords and card numbers too). Default true. */
  maskAllInputs?: boolean;
  /** false: the page's text is recorded (names, amounts, addresses on screen). Default true. */
  maskAllText?: boolean;
  /** Elements left out entirely, beside `[data-private]`. */
  blockSelector?: string;
  /** true: images, video, audio and canvas are recorded (what they show becomes visible). Default false. */
  recordMedia?: boolean;
}

/** A span of the page's own work, from `startSpan`. */
export interface Span {
  /** 32 hex digits; undefined before `init` or during server-side rendering. */
  readonly traceId?: string;
  /** 16 hex digits. */
  readonly spanId?: string;
  /** Adds an attribute (a string, finite number or boolean; keys like `work_order.id`; at most 32). */
  setAttribute(key: string, value: string | number | boolean): Span;
  /** Ends it and sends it; a second call does nothing. */
  end(status?: "ok" | "error"): void;
}

/** Context of a business error; its fingerprint is [process, step, code]. */
export interface BusinessErrorContext {
  process: string;
  step: string;
  code: string;
  industry?: string;
  userRole?: string;
  businessId?: string;
}

/** Context tags of a captured exception. */
export interface ErrorContext {
  process?: string;
  step?: string;
  component?: string;
  industry?: string;
  userRole?: string;
  businessId?: string;
  /** The error boundary that caught it (`@thorbis/obs/react` sets it). */
  errorBoundary?: string;
  /** React's component stack (`@thorbis/obs/react` sets it). */
  componentStack?: string;
}

export interface Diagnostics {
  queued: number;
  retrying?: number;
  failures: number;
  dropped: number;
  /** Calls and browser entries waiting for the wasm half to load. */
  waiting?: number;
  sessionId?: string;
  sampled?: boolean;
}

export function init(options?: InitOptions): void;
export function track(name: string, properties?: Properties): void;
export function trackJourney(journeyType: string, step: string, meta?: Properties): void;
export function trackConversion(conversionType: string, value: number, meta?: Properties): void;
export function trackBusinessError(error: unknown, context: BusinessErrorContext): void;
export function captureException(error: unknown, context?: ErrorContext): void;
/** Records this session for replay from now on, whatever the sample rates say (once consent is granted, when it is pending). */
export function startReplay(): void;
/** Stops the replay recording and sends what it holds. */
export function stopReplay(): void;
/** A step before an error: it goes out with the next errors (the last 100 are kept). */
export interface BreadcrumbInput {
  category?: string;
  message: string;
  level?: "debug" | "info" | "warning" | "error";
  data?: Properties;
}
export function addBreadcrumb(breadcrumb: BreadcrumbInput): void;
/** The signed-in user on every error: an opaque id (never an email), their role, their business. */
export interface User {
  id?: string;
  role?: string;
  businessId?: string;
}
export function setUser(user: User | null): void;
export function setTag(key: string, value: string | null): void;
export function addTiming(name: string, ms?: number): void;
/** Starts a span (the spec's `startTransaction`): requests made until it ends are its children, errors thrown meanwhile point at its trace. */
export function startSpan(name: string, op?: string): Span;
/**
 * Grants (true) or withdraws (false) consent. Nothing is sent before it is granted, and what was
 * queued meanwhile goes then; a session sampled for replay starts recording then. Withdrawn, the
 * queue and the replay recording are dropped.
 */
export function setConsent(granted: boolean): void;
export function flush(): void;
export function ready(): Promise<boolean>;
export function diagnostics(): Diagnostics;
