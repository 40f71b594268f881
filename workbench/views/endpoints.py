"""Endpoints: every API step with its method, path and body schema, and a form that
sends a request and shows the response and the trace it started."""

import json

from workflow.api_urls import documents
from workflow.registry import registry

from .. import describe, examples
from .common import render


def endpoint(step):
    config = step.config
    sends_body = config.method not in ("GET", "HEAD", "DELETE", "OPTIONS")
    return {
        "step": step,
        "method": config.method,
        "path": config.path,
        "path_params": config.path_params,
        "fields": describe.schema_fields(config.body_schema),
        "query_fields": describe.schema_fields(config.query_params),
        "sends_body": sends_body,
        "example": json.dumps(examples.example_body(config.body_schema), indent=2)
        if sends_body
        else "",
    }


def page(request, site):
    steps = sorted(registry.of_type("api"), key=lambda s: (s.config.path, s.config.method))
    return render(
        request,
        site,
        "workbench/endpoints.html",
        "endpoints",
        "Endpoints",
        endpoints=[endpoint(step) for step in steps],
        documents=documents(),
    )
