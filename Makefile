# anonfaces: the two set-up commands are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
DEMO   ?= runs/demo

.PHONY: demo test install install-test bench lint clean

# Reinstall only when the project's requirements change.
$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make demo: set up .venv and run the whole chain on the bundled sample (datasets/sample), encoding it once
demo: install
	$(PY) -m anonfaces.cli encode --encodings $(DEMO)/encodings.npz --no-progress
	$(PY) -m anonfaces.cli cluster --encodings $(DEMO)/encodings.npz --algo fixed-kmeans --k 5 --out $(DEMO)/clusters.csv
	$(PY) -m anonfaces.cli anonymize --out $(DEMO)/anonymized --k 5 --overwrite --no-progress \
		--encodings $(DEMO)/encodings.npz --clusters $(DEMO)/clusters.csv --contact-sheet $(DEMO)/contact_sheet.jpg
	$(PY) -m anonfaces.cli evaluate --run $(DEMO)/anonymized --out $(DEMO)/scores --recognizers dlib,lbp --no-detect \
		--jobs 2 --no-progress
	$(PY) -m anonfaces.cli evaluate --out $(DEMO)/results --encodings $(DEMO)/encodings.npz \
		--methods ksame:morph,ksame:pixel,blur --k 2,5 --recognizers dlib,lbp --no-detect --jobs 2 --no-progress

## make test: install the test extras and run the whole test suite
test: install-test
	$(PY) -m pytest -q

## make bench: the benchmarks behind the README's figures (slow; needs ../shared/data)
bench: install-test
	$(PY) bench/bench_encode.py
	$(PY) bench/bench_anonymize.py

lint: install-test
	$(VENV)/bin/ruff check anonfaces scripts tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
