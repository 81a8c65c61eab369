# make install / make uninstall: the tools, the default model, the plot scripts, the prompts,
# the docs and a man page per tool, under PREFIX (default /usr/local), staged under DESTDIR:
#   $(DESTDIR)$(PREFIX)/bin/xl-*                       the tools
#   $(DESTDIR)$(PREFIX)/share/xltools/models/...      the default model   } where the tools
#   $(DESTDIR)$(PREFIX)/share/xltools/plots/*.gp      the gnuplot scripts } find them
#   $(DESTDIR)$(PREFIX)/share/xltools/prompts/*.txt   the prompts         } (util.h
#                                                      xl_find_resource: <exe>/../share/xltools)
#   $(DESTDIR)$(PREFIX)/share/doc/xltools/*.md        README and docs/
#   $(DESTDIR)$(PREFIX)/share/man/man1/xl-*.1         man pages
# The man pages are generated from each tool's --help and the first line of its --version
# by help2man (a Debian package, in `make deps`), with the NAME, EXAMPLES and SEE ALSO
# sections of man/TOOL.h2m (the build lines of --version describe one binary, not the tool).
# tests/t_install.sh installs into a temporary DESTDIR and runs the installed tools.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/xltools
DOCDIR  ?= $(PREFIX)/share/doc/xltools
MANDIR  ?= $(PREFIX)/share/man/man1
HELP2MAN ?= help2man
INSTALL ?= install

MAN_PAGES := $(TOOLS:$(BIN)/%=$(BUILD)/man/%.1)

.PHONY: install uninstall man
man: $(MAN_PAGES)

# help2man runs the tool itself (--help, --version); a missing man/TOOL.h2m is an error.
$(BUILD)/man/%.1: $(BIN)/% man/%.h2m
	@mkdir -p $(@D)
	@command -v $(HELP2MAN) > /dev/null || { echo "make: $(HELP2MAN) is not installed (make deps installs it)" >&2; exit 1; }
	$(HELP2MAN) --no-info --no-discard-stderr --section=1 --source=xltools --manual="xltools" \
	  --version-string="$$($(abspath $<) --version | head -1)" \
	  --include=man/$*.h2m --output=$@.tmp $(abspath $<)
	@mv $@.tmp $@

install: $(TOOLS) $(MAN_PAGES)
	@set -eu; \
	d='$(DESTDIR)'; \
	$(INSTALL) -d "$$d$(BINDIR)" "$$d$(DATADIR)/models" "$$d$(DATADIR)/plots" "$$d$(DATADIR)/prompts" \
	  "$$d$(DOCDIR)" "$$d$(MANDIR)"; \
	$(INSTALL) -m 755 $(TOOLS) "$$d$(BINDIR)/"; \
	cp -R models/xlstm-tiny-pydocs "$$d$(DATADIR)/models/"; \
	chmod -R u+rwX,go+rX "$$d$(DATADIR)/models"; \
	$(INSTALL) -m 644 plots/*.gp "$$d$(DATADIR)/plots/"; \
	$(INSTALL) -m 644 prompts/*.txt "$$d$(DATADIR)/prompts/"; \
	$(INSTALL) -m 644 README.md docs/*.md "$$d$(DOCDIR)/"; \
	$(INSTALL) -m 644 $(MAN_PAGES) "$$d$(MANDIR)/"; \
	echo "installed $(notdir $(TOOLS)) in $$d$(BINDIR), data in $$d$(DATADIR), man pages in $$d$(MANDIR)"

uninstall:
	@set -eu; \
	d='$(DESTDIR)'; \
	for t in $(notdir $(TOOL_SRC:.c=)); do rm -f "$$d$(BINDIR)/$$t" "$$d$(MANDIR)/$$t.1"; done; \
	rm -rf "$$d$(DATADIR)" "$$d$(DOCDIR)"; \
	echo "removed the xltools files from $$d$(PREFIX)"
