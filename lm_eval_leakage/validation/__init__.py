"""The controlled-contamination experiment (fine-tune on half of a sample, detect through lm-eval)
and the offline assets it and the tests use (SmolLM2-135M and MMLU from PyPI packages)."""
