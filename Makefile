# CP-WhisperX — the README's commands. Everything lives in .venv and $(CPW_HOME).
PYTHON ?= python3
VENV := .venv
CPW_HOME ?= $(CURDIR)/.cpw
DAGSTER_HOME ?= $(CPW_HOME)/dagster
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
SAMPLE ?= cpw_assets/samples/voicemail_fr.mka
export CPW_HOME DAGSTER_HOME

.PHONY: setup demo test ui lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/python -m cpw_assets.metrics   # parse the dbt manifest once, at install
	touch $@

setup: $(VENV)/.installed

# Register the bundled sample and process it with `dagster job execute`, as a script would.
demo: setup
	@key=$$($(VENV)/bin/cpw register $(SAMPLE)) && \
	echo "title $$key: dagster job execute ..." && \
	$(VENV)/bin/dagster job execute -m cpw_assets.definitions -j subtitle_job \
		-c cpw_assets/quiet.yaml --tags "{\"dagster/partition\": \"$$key\"}" && \
	echo "subtitles:" && $(VENV)/bin/cpw outputs $$key

test: setup
	@echo "make test: the whole suite (~600 tests: real Whisper models, a real Dagster instance," \
	     "servers on 127.0.0.1); about 15-18 minutes on 2 cores, one dot per test"
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

# The web UI and the daemon (sensors), bound to 127.0.0.1 unless UI_HOST says otherwise.
ui: setup
	@$(VENV)/bin/cpw env >/dev/null
	$(VENV)/bin/dagster dev -w workspace.yaml -h $(UI_HOST) -p $(UI_PORT)

bench: setup
	$(VENV)/bin/python benchmarks/bench_end_to_end.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
