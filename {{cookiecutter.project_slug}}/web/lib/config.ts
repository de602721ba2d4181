// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The answers this project was rendered with. Each one is a default that the environment
 * overrides at run time (lib/server/env.ts), so one build serves every environment.
 */
export const PROJECT_NAME = "{{ cookiecutter.project_name }}";
/** service.name of the Next.js server and of the browser (OTEL_SERVICE_NAME overrides it). */
export const SERVICE_NAME = "{{ cookiecutter.web_service_name }}";
/** service.namespace, shared with the backend. */
export const SERVICE_NAMESPACE = "{{ cookiecutter.project_slug }}";
/** deployment.environment.name (DEPLOYMENT_ENVIRONMENT overrides it). */
export const DEPLOYMENT_ENVIRONMENT = "{{ cookiecutter.deployment_environment }}";
/** Share of new traces kept, 0 to 1 (OTEL_TRACES_SAMPLER_ARG overrides it). */
export const TRACE_SAMPLE_RATIO = "{{ cookiecutter.trace_sample_ratio }}";
/** Highlight project (HIGHLIGHT_PROJECT_ID overrides it); used when lib/observability.ts picks Highlight. */
export const HIGHLIGHT_PROJECT_ID = "{{ cookiecutter.highlight_project_id }}";
/** Session replay vendor, a key of lib/observability.ts's REPLAY_VENDORS (SESSION_REPLAY overrides it). */
export const SESSION_REPLAY = "{{ cookiecutter.session_replay }}";
