/// The command-line grammar of the `fuse-overlayfs` program (1.x), over bytes.
///
/// fuse-overlayfs hands its `-o` arguments to libfuse's `fuse_opt_parse`, which splits an option group on `,`
/// and unescapes it (`process_real_option_group`): `\` followed by three octal digits (`\012`) is that byte,
/// `\` followed by any other byte is that byte, so `\,` is a comma inside a value and `\\` a backslash. The
/// `%s` templates (`lowerdir=%s`, `upperdir=%s`, `workdir=%s`) then take everything after `=`; a later option
/// with the same key silently replaces an earlier one, so an unescaped `,` in a path could inject
/// `upperdir=…`.
///
/// fuse-overlayfs itself then splits `lowerdir` **and** `upperdir` with `strtok_r(…, ":")` (`read_dirs`):
/// every `:` separates layers, runs of `:` collapse, and there is no escape for it (`\:` reaches it as a
/// plain `:`; containers/fuse-overlayfs#440). A layer that starts with `//` names a plugin
/// (`//plugin/data/path`). `workdir` is only passed to realpath(3), so `:` is harmless there.
///
/// Options it does not know are dropped with "unknown argument ignored: …" on stderr and the mount goes on
/// without them, which is why the planner refuses every overlay option it cannot carry instead of passing it.
enum FuseOverlayfsGrammar {
    static let backslash = UInt8(ascii: "\\")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let slash = UInt8(ascii: "/")

    /// Escapes a value for a libfuse option group: `\` → `\\`, `,` → `\,`; every other byte as is.
    ///
    /// `\\` also keeps a following octal triple literal (`\\012` unescapes to `\012`, not a newline).
    static func escape<Bytes: Sequence<UInt8>>(_ value: Bytes) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.underestimatedCount + 4)
        for byte in value {
            if byte == backslash || byte == comma { out.append(backslash) }
            out.append(byte)
        }
        return out
    }

    /// Undoes libfuse's option-group escaping of one option (`process_real_option_group`): `\NNN` with a first
    /// digit 0–3 and two more 0–7 is that byte, `\x` is `x`, a trailing lone `\` stays.
    static func unescape(_ option: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(option.count)
        var index = option.startIndex
        while index < option.endIndex {
            let byte = option[index]
            let next = index + 1
            guard byte == backslash, next < option.endIndex else {
                out.append(byte)
                index += 1
                continue
            }
            if next + 2 < option.endIndex, (48...51).contains(option[next]), (48...55).contains(option[next + 1]),
                (48...55).contains(option[next + 2])
            {
                out.append((option[next] - 48) * 64 + (option[next + 1] - 48) * 8 + (option[next + 2] - 48))
                index = next + 3
            } else {
                out.append(option[next])
                index = next + 1
            }
        }
        return out
    }

    /// Splits an option group on the commas no backslash takes, then unescapes each option, as libfuse does.
    static func splitOptionGroup(_ group: [UInt8]) -> [[UInt8]] {
        var options: [[UInt8]] = []
        var start = group.startIndex
        var index = group.startIndex
        while index < group.endIndex {
            if group[index] == backslash && index + 1 < group.endIndex {
                index += 2
                continue
            }
            if group[index] == comma {
                options.append(unescape(group[start..<index]))
                start = index + 1
            }
            index += 1
        }
        options.append(unescape(group[start..<group.endIndex]))
        return options
    }

    /// The longest single argument execve(2) takes: `MAX_ARG_STRLEN`, 32 pages including the NUL.
    static func maximumArgumentLength(pageSize: Int) -> Int { 32 * pageSize - 1 }

    /// The environment the program runs with: a fixed `PATH` (libfuse finds `fusermount3` there when not root)
    /// and the C locale, nothing inherited.
    static let environment: [[UInt8]] = [
        Array("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".utf8), Array("LC_ALL=C".utf8),
    ]
}
