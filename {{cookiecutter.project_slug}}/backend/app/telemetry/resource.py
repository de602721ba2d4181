# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The Resource every signal carries: who emitted it, in which environment."""

from __future__ import annotations

import os
import uuid

from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.semconv._incubating.attributes.deployment_attributes import (
    DEPLOYMENT_ENVIRONMENT_NAME,
)
from opentelemetry.semconv._incubating.attributes.process_attributes import PROCESS_PID
from opentelemetry.semconv._incubating.attributes.service_attributes import SERVICE_INSTANCE_ID, SERVICE_NAMESPACE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION
from opentelemetry.util.types import Attributes

from .config import TelemetrySettings


def build_resource(settings: TelemetrySettings) -> Resource:
    """Rendered defaults, overridden by OTEL_RESOURCE_ATTRIBUTES, then by OTEL_SERVICE_NAME.

    Each process (each uvicorn/gunicorn worker builds its own) gets its own service.instance.id,
    so the series of two workers never collide in Prometheus.
    """
    defaults = {
        SERVICE_INSTANCE_ID: str(uuid.uuid4()),
        PROCESS_PID: os.getpid(),
        SERVICE_NAME: settings.service_name,
        SERVICE_VERSION: settings.service_version,
        SERVICE_NAMESPACE: settings.service_namespace,
        DEPLOYMENT_ENVIRONMENT_NAME: settings.deployment_environment,
    }
    from_env = dict(OTELResourceDetector().detect().attributes)
    # settings.service_name already folds OTEL_SERVICE_NAME in; keep it over OTEL_RESOURCE_ATTRIBUTES.
    from_env[SERVICE_NAME] = settings.service_name
    resource = Resource.create({**defaults, **from_env})
    return HashOnceResource(resource.attributes, resource.schema_url)


class HashOnceResource(Resource):
    """A Resource that computes its hash once. The OTLP encoders group every batch by resource,
    hashing the resource of each span and log record, and Resource's hash is a JSON dump of its
    attributes (~10 µs, more than a span's own encoding costs); the attributes never change."""

    def __init__(self, attributes: Attributes, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash
