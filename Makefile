# One task runner for humans and CI.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROTO_FILES := $(shell find proto/baton -name '*.proto')
GEN := gen/python

.PHONY: install up test lint breaking proto proto-check bench descriptor deploy-check deploy-configs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

proto: install
	rm -rf $(GEN)/baton
	$(BIN)/python -m grpc_tools.protoc -Iproto \
	  --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTO_FILES)
	find $(GEN)/baton -type d -exec touch {}/__init__.py \;

proto-check: install
	@tmp=$$(mktemp -d); cp -r $(GEN) $$tmp/before; $(MAKE) -s proto >/dev/null; \
	if ! diff -r $$tmp/before $(GEN) >/dev/null; then \
	  echo "generated code in $(GEN) is stale: run 'make proto' and commit"; diff -r $$tmp/before $(GEN) | head -20; exit 1; fi; \
	echo "generated code is up to date"

descriptor: install
	mkdir -p deploy/envoy
	$(BIN)/buf build -o deploy/envoy/descriptor.binpb

# Offline checks of deploy/: the gateway config with the real Envoy, the
# Kubernetes manifests and the compose file against their schemas.
deploy-check: descriptor
	$(BIN)/envoy --mode validate --log-level warning -c deploy/envoy/envoy.yaml
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/docker-compose.yaml

# Re-renders deploy/compose/envoy.yaml and deploy/k8s/gateway-config.yaml
# from deploy/envoy/envoy.yaml.
deploy-configs: install
	$(BIN)/python -c 'from baton_cli._gateway import write_deploy_configs; write_deploy_configs()'

# Breaking-change check of the contracts against main (WIRE_JSON rules).
BUF_AGAINST ?= .git\#branch=main

breaking: install
	@if git rev-parse --verify -q main >/dev/null; then $(BIN)/buf breaking --against '$(BUF_AGAINST)'; \
	else echo "no main branch to compare against; skipping buf breaking"; fi

lint: install breaking
	$(BIN)/buf lint
	$(BIN)/ruff check libs services examples tests bench
	$(BIN)/mypy

# Options for `baton up`, e.g. make up ARGS="--data-dir /tmp/baton".
ARGS ?=

up: install
	$(BIN)/baton up $(ARGS)

test: install
	$(BIN)/buf lint
	$(BIN)/ruff check libs services examples tests bench
	$(BIN)/mypy
	$(MAKE) -s breaking
	$(MAKE) -s proto-check
	$(MAKE) -s deploy-check
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .baton
