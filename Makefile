# The two commands: `make run` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test lint format clean messages screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smsbridge serve --host 127.0.0.1 --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# The web admin's strings: extract them (babel.cfg) and merge them into the French catalog;
# then translate the new or fuzzy entries of the .po (tests/unit/test_admin_i18n.py lists them).
LOCALE := src/smsbridge/web/locale
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k phrase --no-wrap --sort-by-file --project smsbridge \
		--copyright-holder "smsbridge contributors" -o $(LOCALE)/messages.pot .
	$(BIN)/pybabel update --no-wrap -i $(LOCALE)/messages.pot -d $(LOCALE) -l fr

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The admin's screenshots in docs/img/journey/ (every screen, English and French, 1280 and
# 390 px), taken by the bilingual journey test; pngquant (apt-get install pngquant) makes
# them about three times smaller.
screenshots: $(STAMP)
	SMSBRIDGE_DOCS_SCREENSHOTS=$(CURDIR)/docs/img/journey CI=true $(BIN)/pytest -q tests/e2e/test_admin_journey_languages.py
	pngquant --quality=70-90 --speed 1 --ext .png --force docs/img/journey/*/*.png || echo "pngquant not installed: screenshots left uncompressed"
