# Functions of Tests/kernels/run (sourced; uses its $cache, $work, $filters, $package, $here).

# Installs qemu-system-x86 and busybox-static when missing. Prints why the matrix cannot run, if it cannot.
ensure_tools() {
    command -v qemu-system-x86_64 >/dev/null && [ -x /bin/busybox ] && return 0
    echo "== installing qemu-system-x86 and busybox-static" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 busybox-static; } >"$work/apt.log" 2>&1 || true
    command -v qemu-system-x86_64 >/dev/null || { echo "no qemu: apt-get install qemu-system-x86 failed"; return 1; }
    [ -x /bin/busybox ] || { echo "no busybox: apt-get install busybox-static failed"; return 1; }
}

# The newest linux-image package apt knows for a series (6.1, 6.12) or the package of an exact version.
kernel_package() {
    local kernel=$1 pattern found
    if [[ $kernel == *-amd64 ]]; then
        pattern="^linux-image-${kernel//./\\.}\$"
    else
        pattern="^linux-image-${kernel//./\\.}[.-][0-9][^ ]*-amd64\$"
    fi
    lookup() { apt-cache search --names-only "$pattern" | awk '{ print $1 }' | grep -v -e unsigned -e dbg -e -rt- -e -cloud- | sort -V | tail -1; }
    found=$(lookup)
    [ -n "$found" ] || { apt-get update -qq >/dev/null 2>&1 || true; found=$(lookup); }
    [ -n "$found" ] && echo "$found"
}

# Downloads and unpacks a kernel package into the cache (once); prints the unpacked root.
unpack_kernel() {
    local name=$1 root="$cache/$1" download="$work/download"
    if [ ! -e "$root/.unpacked" ]; then
        echo "== downloading $name" >&2
        rm -rf "$root" "$download" && mkdir -p "$download"
        (cd "$download" && apt-get download -q "$name" >&2 2>"$work/download.log") || return 1
        dpkg -x "$download"/*.deb "$root" && touch "$root/.unpacked" || return 1
        rm -rf "$download"
    fi
    echo "$root"
}

# Prints, deps first, the module files (relative to lib/modules/RELEASE) that load the given modules,
# from the `depends=` field of each module's .modinfo; modules built into the kernel are left out.
module_files() {
    local dir=$1; shift
    local -A path=() seen=()
    local file name
    while IFS= read -r file; do
        name=${file##*/}; name=${name%%.ko*}; path[${name//-/_}]=$file
    done < <(cd "$dir" && find kernel -name '*.ko*')
    visit() {
        local module=${1//-/_} dependency
        [ -z "${seen[$module]:-}" ] || return 0
        seen[$module]=1
        if [ -z "${path[$module]:-}" ]; then
            grep -q "/${module}.ko\$" "$dir/modules.builtin" 2>/dev/null ||
                grep -q "/${1}.ko\$" "$dir/modules.builtin" 2>/dev/null ||
                { echo "error: module $module is neither a file nor built in" >&2; return 1; }
            return 0
        fi
        for dependency in $(unpacked_module "$dir/${path[$module]}" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
            visit "$dependency"
        done
        echo "${path[$module]}"
    }
    for name in "$@"; do visit "$name"; done
}

# A module file's bytes, decompressed.
unpacked_module() {
    case $1 in
        *.xz) xz -dc "$1" ;;
        *.zst) zstd -dc "$1" ;;
        *.gz) gzip -dc "$1" ;;
        *) cat "$1" ;;
    esac
}

# Builds the guest's initramfs: busybox, Tests/kernels/init, guest.env and the modules (the arguments after the
# label; those and what they depend on), numbered in load order.
build_initramfs() {
    local root=$1 release=$2 output=$3 tree="$work/initramfs-$4" index=10 file
    shift 4
    rm -rf "$tree" && mkdir -p "$tree"/{bin,proc,sys,dev,modules}
    cp /bin/busybox "$tree/bin/busybox" && ln -s busybox "$tree/bin/sh"
    cp "$here/init" "$tree/init" && chmod 755 "$tree/init"
    local no_overlay=0
    [[ " $* " == *" overlay "* ]] || no_overlay=1
    printf 'UNIONMOUNT_GUEST=%q\nUNIONMOUNT_PACKAGE=%q\nUNIONMOUNT_GUEST_FILTERS=%q\nUNIONMOUNT_GUEST_SKIPS=%q\n' \
        "${UNIONMOUNT_KERNEL_GUEST:-$here/guest}" "$package" "$filters" "$skips" >"$tree/guest.env"
    printf 'UNIONMOUNT_GUEST_NO_OVERLAY=%q\n' "$no_overlay" >>"$tree/guest.env"
    local dir="$root/lib/modules/$release"
    for file in $(module_files "$dir" "$@"); do
        name=${file##*/}
        unpacked_module "$dir/$file" >"$tree/modules/$index-${name%%.ko*}.ko"
        index=$((index + 1))
    done
    (cd "$tree" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$output"
}

# Boots one kernel with the initramfs; the console goes to the log and, prefixed, to stdout.
boot() {
    local kernel=$1 initramfs=$2 log=$3 release=$4 scratch="$work/scratch-$4.img"
    truncate -s 8G "$scratch" && mkfs.ext4 -q -F "$scratch"
    timeout -k 10 "$timeout_seconds" qemu-system-x86_64 \
        -accel tcg -cpu max -smp "${UNIONMOUNT_KERNEL_CPUS:-2}" -m "${UNIONMOUNT_KERNEL_MEMORY:-3G}" \
        -nodefaults -no-reboot -display none -serial stdio \
        -kernel "$kernel" -initrd "$initramfs" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -drive file="$scratch",if=virtio,format=raw,cache=unsafe \
        </dev/null 2>&1 | sed -u 's/\r$//' | tee "$log" | sed -u "s/^/[$release] /"
    local status=${PIPESTATUS[0]}
    rm -f "$scratch"
    [ "$status" != 124 ] || echo "unionmount-host: timed out after ${timeout_seconds}s" >>"$log"
}

# PASS, FAIL or ERROR (the guest gave no result) for one kernel's log; PASS needs the test run's passing line.
verdict() {
    local status
    status=$(sed -n 's/^unionmount-guest: done status=\([0-9]*\).*/\1/p' "$1" | tail -1)
    case $status in
        0) grep -a -q -E '^[^ ]+ Test run with .* passed' "$1" && echo PASS || echo FAIL ;;
        "") echo ERROR ;;
        *) echo FAIL ;;
    esac
}

# What a kernel's log says: the test run's closing line, failing tests, leaked mounts, or why there was no result.
details() {
    local log=$1 closing failed leaked
    closing=$(grep -a -E '^[^ ]+ Test run with ' "$log" | tail -1 | sed -E 's/^[^ ]+ Test run with //; s/ after [0-9.]+ seconds//; s/\.$//')
    # Top-level "failed after" lines only (a test's child process prints its own, indented).
    failed=$(grep -a -E '^✘ Test .* failed after ' "$log" | grep -a -v '^✘ Test run with' |
        sed -E 's/^✘ Test (.*) failed after .*/\1/; s/ with [0-9]+ test cases?$//' | sort -u | paste -sd ';' -)
    leaked=$(grep -a -c '^unionmount-guest: leaked mount' "$log" || true)
    local text=${closing:-no test run}
    [ -z "$failed" ] || text+="; failed: $failed"
    [ "$leaked" = 0 ] || text+="; $leaked leaked mount line(s)"
    grep -a -q '^unionmount-host: timed out' "$log" && text+="; timed out"
    if ! grep -a -q '^unionmount-guest: done' "$log"; then
        text+="; no result from the guest: $(grep -a -E 'Kernel panic|unionmount-guest:' "$log" | tail -1)"
    fi
    echo "$text"
}

# The per-kernel table, and the closing line "N passed, N failed, N skipped". Exit status 1 on any failure.
summary() {
    local row kernel result seconds detail passed=0 failed=0 skipped=0
    echo
    echo "kernel matrix (suites: $filters${skips:+; skipped: $skips})"
    printf '%-26s %-6s %8s  %s\n' kernel result seconds detail
    for row in "$@"; do
        IFS=$'\t' read -r kernel result seconds detail <<<"$row"
        printf '%-26s %-6s %8s  %s\n' "$kernel" "$result" "$seconds" "$detail"
        case $result in
            PASS) passed=$((passed + 1)) ;;
            SKIP) skipped=$((skipped + 1)) ;;
            *) failed=$((failed + 1)) ;;
        esac
    done
    echo "kernels: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" = 0 ]
}
