# One task runner for humans and CI.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROTO_FILES := $(shell find proto/baton -name '*.proto')
GEN := gen/python

.PHONY: install up test test-fast lint proto proto-check bench descriptor clean

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

lint: install
	$(BIN)/buf lint
	$(BIN)/ruff check libs services examples tests bench

up: install
	$(BIN)/baton up

test: install
	$(BIN)/buf lint
	$(MAKE) -s proto-check
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .baton
