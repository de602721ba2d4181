# {{ cookiecutter.project_name }}: the local stack on k3d (README.md, "Local stack (k3d)").
# The Makefile includes this file when it exists; `make -f deploy/k3d.mk <target>` works too.
# Needs docker, k3d (v5) and kubectl. Every kubectl call names the cluster's context, so your
# current context is never used or changed.

# This file's path, taken before anything else is included (for the sub-make in `dev`).
K3D_MK := $(lastword $(MAKEFILE_LIST))
K3D_CLUSTER ?= {{ cookiecutter.project_slug }}
K8S_NAMESPACE ?= {{ cookiecutter.project_slug }}
K3D_CONFIG ?= deploy/k3d/cluster.yaml
K8S_OVERLAY ?= deploy/k8s/overlays/local
# The tag the local overlay deploys (deploy/k8s/overlays/local/kustomization.yaml, `images:`).
IMAGE_TAG ?= dev
API_IMAGE ?= {{ cookiecutter.project_slug }}-api:$(IMAGE_TAG)
{%- if cookiecutter.include_web %}
WEB_IMAGE ?= {{ cookiecutter.project_slug }}-web:$(IMAGE_TAG)
APP_IMAGES := $(API_IMAGE) $(WEB_IMAGE)
APP_DEPLOYMENTS := deployment/api deployment/web
{%- else %}
APP_IMAGES := $(API_IMAGE)
APP_DEPLOYMENTS := deployment/api
{%- endif %}
# Written on first use, git-ignored (deploy/.gitignore); docker-compose.yaml reads it too.
GRAFANA_SECRET_FILE ?= deploy/.secrets/grafana-admin.env
# Host ports: deploy/k3d/cluster.yaml maps them to the NodePorts of the local overlay.
WEB_URL ?= http://localhost:3000
GRAFANA_URL ?= http://localhost:3001
API_URL ?= http://localhost:8000
ROLLOUT_TIMEOUT ?= 300s
DOCKER ?= docker
K3D ?= k3d
KUBECTL ?= kubectl
KUBECTL_CTX = $(KUBECTL) --context k3d-$(K3D_CLUSTER)
KUBECTL_NS = $(KUBECTL_CTX) --namespace $(K8S_NAMESPACE)

.PHONY: k3d-dev compose-dev down cluster images import apply grafana-secret wait urls grafana-password

k3d-dev: wait  ## Local stack on k3d: cluster, images, manifests; waits until ready, prints the URLs
	@$(MAKE) --no-print-directory -f $(K3D_MK) urls

compose-dev: $(GRAFANA_SECRET_FILE)  ## The same stack with docker compose (no Kubernetes)
	$(DOCKER) compose up --build --detach
	@$(MAKE) --no-print-directory -f $(K3D_MK) urls

down:  ## Delete the k3d cluster and everything in it (traces, logs, metrics are gone)
	$(K3D) cluster delete $(K3D_CLUSTER)

cluster:  ## Create the k3d cluster from deploy/k3d/cluster.yaml unless it exists
	@$(K3D) cluster get $(K3D_CLUSTER) >/dev/null 2>&1 \
		|| $(K3D) cluster create --config $(K3D_CONFIG) --wait

images:  ## Build the app images (backend/Dockerfile{% if cookiecutter.include_web %}, web/Dockerfile{% endif %})
	$(DOCKER) build --tag $(API_IMAGE) backend
{%- if cookiecutter.include_web %}
	$(DOCKER) build --tag $(WEB_IMAGE) web
{%- endif %}

import: cluster images  ## Copy the app images into the cluster's nodes (no registry)
	$(K3D) image import --cluster $(K3D_CLUSTER) $(APP_IMAGES)

$(GRAFANA_SECRET_FILE):
	@mkdir -p $(@D)
	@umask 077 && printf 'GF_SECURITY_ADMIN_USER=admin\nGF_SECURITY_ADMIN_PASSWORD=%s\n' \
		"$$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')" > $@
	@echo "Generated the Grafana admin password into $@ (git-ignored)."

grafana-secret: $(GRAFANA_SECRET_FILE)  ## Generate the Grafana admin password file if missing

# The images keep their tag (dev), so a rebuilt image needs a restart to be picked up.
apply: import $(GRAFANA_SECRET_FILE)  ## Apply the local overlay, the Secrets, and restart the app
	$(KUBECTL_CTX) apply --kustomize $(K8S_OVERLAY)
	$(KUBECTL_NS) create secret generic grafana-admin --from-env-file=$(GRAFANA_SECRET_FILE) \
		--dry-run=client --output yaml | $(KUBECTL_NS) apply --filename -
	@set --; \
	if [ -n "$$CEREBE_API_KEY" ]; then set -- "$$@" --from-literal=CEREBE_API_KEY="$$CEREBE_API_KEY"; \
	else echo "CEREBE_API_KEY is not set: the API runs, its LLM calls fail (export it and re-run make dev)."; fi; \
	if [ -n "$$REPLAY_VIEWER_TOKEN" ]; then set -- "$$@" --from-literal=REPLAY_VIEWER_TOKEN="$$REPLAY_VIEWER_TOKEN"; fi; \
	if [ $$# -gt 0 ]; then \
		$(KUBECTL_NS) create secret generic api-secrets "$$@" \
			--dry-run=client --output yaml | $(KUBECTL_NS) apply --filename -; \
	fi
	$(KUBECTL_NS) rollout restart $(APP_DEPLOYMENTS)

wait: apply  ## Wait until every Deployment of the stack is available
	$(KUBECTL_NS) wait --for=condition=Available deployment --all --timeout=$(ROLLOUT_TIMEOUT)
	$(KUBECTL_NS) rollout status $(APP_DEPLOYMENTS) --timeout=$(ROLLOUT_TIMEOUT)

urls:  ## Print where everything is
	@echo ""
{%- if cookiecutter.include_web %}
	@echo "  Web app   $(WEB_URL)"
{%- endif %}
	@echo "  API       $(API_URL)/docs"
	@echo "  Grafana   $(GRAFANA_URL)  (user admin, password: make grafana-password)"
	@echo "  OTLP      http://localhost:4318  (the collector, for apps run outside the cluster)"
	@echo ""

grafana-password: $(GRAFANA_SECRET_FILE)  ## Print the Grafana admin password
	@sed -n 's/^GF_SECURITY_ADMIN_PASSWORD=//p' $(GRAFANA_SECRET_FILE)
