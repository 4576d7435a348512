# edgetrack: `make dev` and `make test` are all a newcomer needs.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := dev

NODE_BIN := $(CURDIR)/node_modules/.bin
WASM_TARGET := wasm32-unknown-unknown
PUBLIC := edge-worker/public
# What `--env production` serves: the tracker and the dashboard, no demo page
# (a demo page on the dashboard's origin is one more page to attack it from).
PUBLIC_PRODUCTION := edge-worker/public-production
## (t.*.wasm: t.full.wasm and the content-hashed modules the scripts load.)
PRODUCTION_ASSETS := t.js t.wasm t.full.js t.mjs t.*.wasm dashboard.html dashboard.js dashboard.css favicon.svg _headers
PERSIST ?= $(CURDIR)/.wrangler/state
PORT ?= 8787
export WRANGLER_SEND_METRICS := false
# worker-build would download these; point it at the pinned local copies.
export WASM_BINDGEN_BIN = $(shell command -v wasm-bindgen)
export WASM_OPT_BIN := $(NODE_BIN)/wasm-opt
export ESBUILD_BIN := $(NODE_BIN)/esbuild

.PHONY: dev test setup setup-test build tracker tracker-variant worker site migrate size fuzz bench bench-smoke clean \
        test-native test-wasm test-e2e test-clients test-warehouse test-deploy deploy lint

setup:
	@scripts/setup.sh dev

setup-test:
	@scripts/setup.sh test

CORE_SRC := $(shell find ingest-core/src -name '*.rs') ingest-core/Cargo.toml Cargo.toml Cargo.lock
WORKER_SRC := $(CORE_SRC) $(shell find edge-worker/src -name '*.rs') edge-worker/Cargo.toml
TRACKER_SRC := $(shell find tracker-wasm/src tracker-wasm/js -type f) tracker-wasm/Cargo.toml Cargo.toml Cargo.lock

## The tracker: Rust -> wasm, wasm-opt, one minified t.js (no wasm-bindgen glue).
## wasm-opt: -Oz, then once more after flattening and re-deriving the control
## flow (-87 B gzip), and without the linker's __data_end/__heap_base exports.
TRACKER_WASM_OPT := -Oz --flatten --rereloop -Oz --converge \
  --remove-exports --pass-arg=remove-exports@__* \
  --strip-debug --strip-producers --strip-target-features
## The options (tracker-wasm/Cargo.toml features) of the default t.js + t.wasm,
## which must fit the size budget; t.full.js + t.full.wasm (and t.mjs) have
## them all. tracker-wasm/README.md says why each is in or out.
TRACKER_OPTIONS := not-found
TRACKER_ALL := engagement paths domains props revenue downloads not-found manual hook forms
## The loader's share of the options: esbuild defines, true when in the set.
TRACKER_JS_FLAGS := engagement:ET_ENGAGEMENT props:ET_PROPS revenue:ET_REVENUE manual:ET_MANUAL hook:ET_HOOK forms:ET_FORMS
tracker_defines = $(foreach f,$(TRACKER_JS_FLAGS),--define:$(word 2,$(subst :, ,$(f)))=$(if $(filter $(word 1,$(subst :, ,$(f))),$(1)),true,false))
## The module a script loads is named after its contents, NAME.<hash>.wasm
## (10 hex digits of its SHA-256: each digit costs t.js about one byte of
## gzip, and 40 bits keep two builds apart), so it can be cached for a year as
## immutable (www/_headers) and a new build is a new name; NAME.wasm is the
## same bytes under a stable name (the size report, `wasm:` in t.mjs's
## init). $(call hashed_wasm,NAME): that file name.
hashed_wasm = $(1).$$(sha256sum $(PUBLIC)/$(1).wasm | cut -c1-10).wasm
## $(call tracker_variant,NAME,OPTIONS): NAME.wasm, NAME.<hash>.wasm and
## NAME.js (which loads NAME.<hash>.wasm) in public/.
define tracker_variant
	cargo build -q -p tracker-wasm --release --target $(WASM_TARGET) --no-default-features --features "$(2)"
	$(NODE_BIN)/wasm-opt $(TRACKER_WASM_OPT) \
	  target/$(WASM_TARGET)/release/tracker_wasm.wasm -o $(PUBLIC)/$(1).wasm
	find $(PUBLIC) -maxdepth 1 -regextype posix-extended -regex '.*/$(subst .,\.,$(1))\.[0-9a-f]+\.wasm' -delete
	wasm=$(call hashed_wasm,$(1)) && cp $(PUBLIC)/$(1).wasm $(PUBLIC)/$$wasm && \
	$(NODE_BIN)/esbuild tracker-wasm/js/loader.js --bundle --minify --format=iife \
	  --log-level=warning --log-override:empty-import-meta=silent \
	  $(call tracker_defines,$(2)) --define:ET_WASM="\"$$wasm\"" --outfile=$(PUBLIC)/$(1).js
endef
## File targets: a second `make` with nothing changed does nothing.
tracker: $(PUBLIC)/t.js

$(PUBLIC)/t.js: $(TRACKER_SRC) Makefile
	mkdir -p $(PUBLIC)
	$(call tracker_variant,t.full,$(TRACKER_ALL))
	$(call tracker_variant,t,$(TRACKER_OPTIONS))
	wasm=$(call hashed_wasm,t.full) && \
	$(NODE_BIN)/esbuild tracker-wasm/js/esm.js --bundle --minify --format=esm --log-level=warning \
	  $(call tracker_defines,$(TRACKER_ALL)) --define:ET_WASM="\"$$wasm\"" --outfile=$(PUBLIC)/t.mjs

## One variant of the tracker, t.js + t.wasm with OPTIONS, into PUBLIC (make
## bench measures what each option costs this way):
##   make tracker-variant PUBLIC=target/variant OPTIONS="engagement props"
tracker-variant:
	mkdir -p $(PUBLIC)
	$(call tracker_variant,t,$(OPTIONS))

## The worker: build/index.js + build/index_bg.wasm.
worker: edge-worker/build/index.js

edge-worker/build/index.js: $(WORKER_SRC)
	@mkdir -p target
	@echo "building the worker (worker-build --release)"
	@cd edge-worker && worker-build --release > $(CURDIR)/target/worker-build.log 2>&1 \
	  || { cat $(CURDIR)/target/worker-build.log; exit 1; }
	@touch $@

## The static site: www/ plus the tracker, served by the worker's assets in
## development; production gets only PRODUCTION_ASSETS.
site: tracker
	cp -r www/. $(PUBLIC)/
	rm -rf $(PUBLIC_PRODUCTION) && mkdir -p $(PUBLIC_PRODUCTION)
	cd $(PUBLIC) && cp $(PRODUCTION_ASSETS) $(CURDIR)/$(PUBLIC_PRODUCTION)/

build: setup site worker

migrate:
	cd edge-worker && CI=true $(NODE_BIN)/wrangler d1 migrations apply DB --local --persist-to $(PERSIST) >/dev/null

dev: build migrate
	@echo
	@echo "  edgetrack is starting at http://127.0.0.1:$(PORT)/"
	@echo "  demo site     http://127.0.0.1:$(PORT)/"
	@echo "  dashboard     http://127.0.0.1:$(PORT)/dashboard.html"
	@echo "  export        curl -H 'x-api-key: demo-secret' http://127.0.0.1:$(PORT)/public/events"
	@echo "  dev project   demo   public token: demo-token   secret key: demo-secret"
	@echo
	cd edge-worker && $(NODE_BIN)/wrangler dev --ip 127.0.0.1 --port $(PORT) --persist-to $(PERSIST) --show-interactive-dev-session=false

## Every test. Each runner prints its own summary.
test: setup-test lint site size worker test-deploy test-native test-wasm bench-smoke test-e2e test-clients test-warehouse

test-native:
	cargo test -p ingest-core -p tracker-wasm

test-wasm:
	CHROMEDRIVER=$$(command -v chromedriver) \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  cargo test -p tracker-wasm --target $(WASM_TARGET)

test-e2e:
	node --test --test-concurrency=1 tests/e2e/

test-clients:
	.venv/bin/python -m pytest -q tests/clients
	node --test --test-concurrency=1 tests/clients/

## The warehouse path: what the HTTP sink and the R2 archive hold, loaded
## into ClickHouse's engine (chDB), equals D1 (tests/warehouse).
test-warehouse:
	.venv/bin/python -m pytest -q tests/warehouse

## The production bundle, built and checked without an account (what
## `make deploy` would upload, in target/deploy-dry-run).
test-deploy: site worker
	@scripts/deploy.sh --dry-run

## Ships `--env production` to Cloudflare: queues, secrets check, D1
## migrations, deploy (scripts/deploy.sh; README "Deploying to Cloudflare").
deploy: setup site worker
	@scripts/deploy.sh

lint:
	cargo fmt --all --check
	cargo clippy -p ingest-core --all-targets -- -D warnings
	cargo clippy -p edge-worker -p tracker-wasm --target $(WASM_TARGET) -- -D warnings

size: tracker
	@scripts/size.sh

## Benchmarks beside the alternatives; writes BENCHMARKS.md (under 15 min).
bench: setup-test site worker
	scripts/bench.sh

## One tiny iteration of every benchmark, so the bench code cannot rot.
bench-smoke:
	scripts/bench.sh --smoke

FUZZ_SECONDS ?= 60
## Fuzzes every ingest-core decoder for FUZZ_SECONDS each (nightly Rust;
## see ingest-core/fuzz/README.md). `make test` replays the kept corpus.
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf target edge-worker/build $(PUBLIC) $(PUBLIC_PRODUCTION) .wrangler
