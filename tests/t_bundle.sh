# t_bundle: `make bundle` (mk/bundle.mk) gives a relocatable tarball: unpacked outside the
# checkout, every program's libraries resolve inside the bundle except the C library's and
# what a GPU machine provides; the tools carry RPATH $ORIGIN/../lib and no path of this
# machine; xl-decode runs from there with an empty LD_LIBRARY_PATH, finds the bundle's own
# default model and writes the same text as the checkout's; the golden files travel and the
# engine's golden test passes on them; the unpacked folder still works after being moved.
# Builds into a private DIST under the test's temp dir (the checkout's dist/ is left alone).
source "$(dirname "$0")/lib.sh"

if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then
  echo "ok - bundle # SKIP the bundle is made from the plain build, not the sanitizer/valgrind runs"
  exit 0
fi
for t in readelf ldd tar jq; do
  command -v "$t" >/dev/null || { echo "ok - bundle # SKIP no $t"; exit 0; }
done

# Left to the machine: glibc's own libraries, and the GPU machine's driver and CUDA toolkit.
SYSTEM_LIBS='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libnsl\.so|libnss_[a-z]+\.so)'
GPU_LIBS='^(libcuda\.so|libcublas\.so|libcublasLt\.so|libnvidia-[a-zA-Z0-9_-]+\.so)'

# ---- build ----
build_args=()
[ -n "${TESTBIN:-}" ] && [ "$TESTBIN" != "$ROOT/build/tests" ] && build_args+=("BUILD=${TESTBIN%/tests}")
dist=$TMP/dist
if make -C "$ROOT" -s bundle DIST="$dist" BIN="$BIN" "${build_args[@]}" > "$TMP/make.log" 2>&1; then
  ok "make bundle"
else
  not_ok "make bundle: $(tail -5 "$TMP/make.log")"
  finish; exit
fi
tgz=$(ls "$dist"/xltools-*-linux-x86_64.tar.gz 2>/dev/null | head -1)
check "the tarball is named xltools-<version>-linux-x86_64.tar.gz" test -s "$tgz"
check "the unpacked folder is there too (dist/xltools)" test -x "$dist/xltools/bin/xl-decode"

# ---- unpack elsewhere ----
U0=$TMP/elsewhere
mkdir -p "$U0"
tar -C "$U0" -xzf "$tgz"
U=$U0/xltools
check "the tarball holds one folder, xltools/" test "$(ls "$U0")" = xltools
version=$(jq -r .version "$U/BUILD-INFO.json" 2>/dev/null || echo "?")
check "BUILD-INFO.json names the tarball's version" test "$(basename "$tgz")" = "xltools-$version-linux-x86_64.tar.gz"
missing=
for t in "$BIN"/xl-*; do [ -x "$U/bin/$(basename "$t")" ] || missing="$missing $(basename "$t")"; done
if [ -z "$missing" ]; then ok "every bin/xl-* tool is in bin/ ($(ls "$U/bin" | wc -l))"; else not_ok "tools missing from bin/:$missing"; fi
for d in models/xlstm-tiny-pydocs plots prompts tests/golden; do
  check "$d is in the bundle" test -d "$U/$d"
done
check "tests/bench_cuda.sh is in the bundle" test -f "$U/tests/bench_cuda.sh"
for h in bench_model test_engine test_cuda bench_cuda; do
  if [ -x "${TESTBIN:-$ROOT/build/tests}/$h" ]; then check "libexec/$h is in the bundle" test -x "$U/libexec/$h"; fi
done

# ---- rpath: $ORIGIN/../lib, nothing absolute ----
progs=()
for f in "$U"/bin/* "$U"/libexec/*; do
  [ "$(basename "$f")" = jq ] && continue   # a system binary without rpath; runs with LD_LIBRARY_PATH=lib
  progs+=("$f")
done
bad=
for f in "${progs[@]}"; do
  dyn=$(readelf -d "$f")
  grep -q 'RPATH.*Library rpath: \[\$ORIGIN/\.\./lib\]$' <<<"$dyn" || bad="$bad $(basename "$f")(no RPATH \$ORIGIN/../lib)"
  grep -q RUNPATH <<<"$dyn" && bad="$bad $(basename "$f")(RUNPATH)"
done
if [ -z "$bad" ]; then ok "every program has RPATH \$ORIGIN/../lib and no RUNPATH (${#progs[@]} programs)"; else not_ok "rpath:$bad"; fi

# ---- ldd: everything resolves inside the bundle but the allowed system/GPU libraries ----
lib_real=$(cd "$U/lib" && pwd -P)
ldd_check() {   # FILE [env...]: prints the offending lines
  local f=$1; shift
  env "$@" ldd "$f" 2>&1 | while read -r so arrow path _; do
    case "$so" in /*ld-linux*) continue ;; esac
    [[ $so =~ $SYSTEM_LIBS ]] && continue
    if [ "$arrow" != "=>" ]; then echo "$so $arrow $path"; continue; fi
    [[ $so =~ $GPU_LIBS ]] && continue   # found or not: the GPU machine's own
    if [ "$path" = not ]; then echo "$so not found"; continue; fi
    case "$path" in "$U/bin/../lib/"*|"$U/libexec/../lib/"*) continue ;; esac   # ldd's own spelling, no link in between
    case "$(readlink -f "$path")" in "$lib_real"/*) ;; *) echo "$so => $path" ;; esac
  done
}
for f in "${progs[@]}"; do
  out=$(ldd_check "$f" LD_LIBRARY_PATH=)
  if [ -z "$out" ]; then ok "ldd $(basename "$f"): every library inside the bundle (or system/GPU)"
  else not_ok "ldd $(basename "$f"): $(tr '\n' ';' <<<"$out")"; fi
done
if [ -x "$U/libexec/jq" ]; then
  out=$(ldd_check "$U/libexec/jq" LD_LIBRARY_PATH="$U/lib")
  if [ -z "$out" ]; then ok "ldd jq (LD_LIBRARY_PATH=lib): its libraries are in the bundle"; else not_ok "ldd jq: $out"; fi
fi
nlib=$(ls "$U/lib" | wc -l)
check "lib/ holds OpenBLAS and its Fortran runtime" test -f "$U/lib/libopenblas.so.0" -a -f "$U/lib/libgfortran.so.5"
if grep -q libcurl <<<"$(LD_LIBRARY_PATH= ldd "$U/bin/xl-judge")"; then
  check "lib/ holds libcurl and its chain ($nlib libraries in all)" test -f "$U/lib/libcurl.so.4" -a -f "$U/lib/libssl.so.3"
fi

# ---- xl-decode from outside the checkout, empty LD_LIBRARY_PATH ----
want=$(cd "$TMP" && env -u XL_MODEL "$BIN/xl-decode" "The Python interpreter" -n 8 -q 2>/dev/null)
run_bundle() {   # DIR: xl-decode from that bundle, from the temp dir, with a bare environment
  (cd "$TMP" && env -i PATH=/usr/bin:/bin HOME="$TMP" LD_LIBRARY_PATH= "$1/bin/xl-decode" "The Python interpreter" -n 8 -q)
}
got=$(run_bundle "$U" 2>"$TMP/dec.err") || true
if [ -n "$got" ]; then ok "bundle xl-decode prints text: '$got'"; else not_ok "bundle xl-decode printed nothing: $(head -c 300 "$TMP/dec.err")"; fi
check "bundle xl-decode writes the checkout's text" test "$got" = "$want"
model=$(cd "$TMP" && env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH= "$U/bin/xl-decode" "The Python interpreter" -n 2 -q --format ndjson | jq -r .model)
case "$model" in
  "$U0"/*|"$(cd "$U0" && pwd -P)"/*) ok "the default model is the bundle's own ($model)" ;;
  *) not_ok "the default model is the bundle's own: got $model" ;;
esac
mv "$U" "$U0/moved"
got2=$(run_bundle "$U0/moved" 2>/dev/null) || true
check "the folder still works after a move" test "$got2" = "$want"
mv "$U0/moved" "$U"

# ---- no path of the build machine ----
hits=$(grep -rlF "$ROOT" "$U/tests"/*.sh "$U/tests"/*.py "$U/BUILD-INFO.json" 2>/dev/null || true)
if [ -z "$hits" ]; then ok "scripts and BUILD-INFO.json name no path of the checkout"; else not_ok "checkout path in: $hits"; fi
out=$(for f in "${progs[@]}"; do LD_LIBRARY_PATH= ldd "$f"; done | grep -F "$ROOT" || true)
if [ -z "$out" ]; then ok "no library resolves into the checkout"; else not_ok "libraries from the checkout: $out"; fi

# ---- the golden files travel: the engine's golden test runs from the bundle ----
if [ -x "$U/libexec/test_engine" ]; then
  if (cd "$TMP" && env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH= XL_TESTDATA="$U/tests/golden" XL_ROOT="$U" \
      "$U/libexec/test_engine" > "$TMP/te.out" 2>&1); then
    ok "libexec/test_engine passes on the bundle's golden files ($(grep -c '^ok ' "$TMP/te.out") checks)"
  else
    not_ok "libexec/test_engine from the bundle: $(grep -m3 '^not ok\|rror' "$TMP/te.out")"
  fi
fi
if command -v python3 >/dev/null; then
  check "tests/hf_bench.py compiles" python3 -c "import ast,sys; ast.parse(open(sys.argv[1]).read())" "$U/tests/hf_bench.py"
fi
check "tests/bench_cuda.sh parses" bash -n "$U/tests/bench_cuda.sh"
finish
