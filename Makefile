# Convenience targets; each is a script under scripts/.
.PHONY: demo test install bench bench-checker campaigns lint-workflows screenshots
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
install:
	bash scripts/install.sh
bench:
	cargo bench -p faultline-node --bench produce
	cargo bench -p faultline-node --bench cluster
	cargo bench -p faultline-node --bench producer
	cargo bench -p faultline-node --bench lazyfs
bench-checker:
	cargo bench -p faultline-checker --bench check -- --write docs/checker-bench.md
campaigns:
	bash scripts/campaigns.sh
lint-workflows:
	bash scripts/lint-workflows.sh
screenshots:
	bash scripts/screenshots.sh
