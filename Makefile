# Convenience targets; each is a script under scripts/.
.PHONY: demo test bench campaigns lint-workflows
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
bench:
	cargo bench -p faultline-node --bench produce
	cargo bench -p faultline-node --bench cluster
	cargo bench -p faultline-node --bench producer
campaigns:
	bash scripts/campaigns.sh
lint-workflows:
	bash scripts/lint-workflows.sh
