# Convenience targets; each is a script under scripts/.
.PHONY: demo test bench
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
bench:
	cargo bench -p faultline-node --bench produce
	cargo bench -p faultline-node --bench cluster
