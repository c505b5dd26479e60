# One command runs everything CI runs: `make test`.
.PHONY: test deps lint unit demo bench fuzz

# Benches run once each as a smoke test first, so the run ends on the test summary.
test: deps lint
	cargo test --benches --locked
	cargo test --lib --bins --tests --locked

# Installs what the tests need when it is missing (Debian packages; root or sudo).
deps:
	bash scripts/install-test-deps

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings

demo:
	cargo run --release -- serve

# Bounded fuzzing of each target (see fuzz/README.md).
fuzz:
	bash scripts/fuzz-all 60
