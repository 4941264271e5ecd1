import SystemPackage

extension MountPlan {
    /// Plans an overlay mount by the `fuse-overlayfs` program: one posix_spawn(2) of
    /// `fuse-overlayfs -o lowerdir=<l0>:<l1>… [-o upperdir=<u> -o workdir=<w>] [-o <options>] <target>`.
    ///
    /// Every path is made absolute first (the program daemonizes and changes to `/`) and written in
    /// `FuseOverlayfsGrammar` (`\` → `\\`, `,` → `\,`), so no byte of a path can end its option or start another.
    /// What that grammar cannot carry is refused, never passed on:
    ///
    /// - ``UnionMountError/Code/invalidSpec``, `input` naming the field: a lower or upper path with `:`
    ///   (fuse-overlayfs splits both on every `:`, with no escape), or one starting with `//` (its plugin syntax);
    ///   a raw option whose key starts with `-` or is `debug` (it would keep the program in the foreground).
    /// - ``UnionMountError/Code/unsupported``, `input` naming the field: data-only layers; options the program
    ///   does not implement (`index=on`, `nfs_export=on`, `xino` other than `off`, `metacopy=on`, `uuid`,
    ///   `verity` other than `off`, `fsync=strict`, `override_creds`/`nooverride_creds`, `redirect_dir` other
    ///   than `off`); a `source` other than `overlay` or `fuse-overlayfs` (the mount's source is always
    ///   `fuse-overlayfs`); flags other than read-only, nosuid, nodev, noexec, noatime and nodiratime.
    /// - ``UnionMountError/Code/optionsTooLong``: an argument over `MAX_ARG_STRLEN` (32 pages with its NUL), or
    ///   all of them with the environment over `argumentLimit`, which execve(2) would refuse with `E2BIG`.
    ///
    /// Carried as they are: `default_permissions`, `redirect_dir=off`, `volatile` (also for `fsync=volatile`),
    /// the flags as `ro`, `nosuid`, `nodev`, `noexec`, `noatime`, `nodiratime`, and raw options (for the program's
    /// own, such as `uidmapping=`, `squash_to_root`), their values byte for byte. Accepted and not passed, because
    /// the program already behaves so: `index=off`, `nfs_export=off`, `xino=off`, `metacopy=off`, `verity=off`,
    /// `fsync=auto`, and `userxattr` (fuse-overlayfs reads both `trusted.overlay.*` and `user.overlay.*` markers).
    ///
    /// Not checked here: an upper directory whose real path (after symlinks; the program calls realpath(3)) has a
    /// `:` in it.
    ///
    /// - Parameters:
    ///   - spec: the overlay spec; it is validated first.
    ///   - target: the mount point.
    ///   - flags: per-mount flags.
    ///   - program: the fuse-overlayfs executable.
    ///   - pageSize: the page size, for `MAX_ARG_STRLEN`.
    ///   - argumentLimit: execve(2)'s limit on arguments plus environment (`sysconf(_SC_ARG_MAX)`).
    /// - Returns: a plan with strategy ``MountStrategy/fuseOverlayfs`` and one
    ///   ``MountStep/spawn(program:arguments:)``.
    public static func fuseOverlayfs(
        _ spec: OverlaySpec,
        target: FilePath,
        flags: MountFlags = [],
        program: FilePath = "/usr/bin/fuse-overlayfs",
        pageSize: Int = 4096,
        argumentLimit: Int = processArgumentLimit()
    ) throws(UnionMountError) -> MountPlan {
        try spec.validate()
        let planner = FuseOverlayfsArguments(spec: spec)
        let target = absolute(target)
        guard target.bytes.first == FuseOverlayfsGrammar.slash else {
            throw planner.invalid("the mount point must be an absolute path", input: "target")
        }
        if !spec.dataDirectories.isEmpty {
            throw planner.unsupported("fuse-overlayfs has no data-only layers", input: "dataDirectories[0]")
        }
        if spec.source != "overlay" && spec.source != "fuse-overlayfs" {
            throw planner.unsupported(
                "fuse-overlayfs mounts always show the source \"fuse-overlayfs\", not \"\(spec.source)\"",
                input: "source")
        }
        let dashO = Array("-o".utf8)
        var arguments: [(bytes: [UInt8], field: String)] = []
        var lowerdir = Array("lowerdir=".utf8)
        for (index, path) in spec.lowerDirectories.enumerated() {
            let bytes = try planner.layer(path, field: "lowerDirectories[\(index)]", splitOnColon: true)
            if index > 0 { lowerdir.append(FuseOverlayfsGrammar.colon) }
            lowerdir += FuseOverlayfsGrammar.escape(bytes)
        }
        arguments += [(dashO, "lowerDirectories"), (lowerdir, "lowerDirectories")]
        if let upper = spec.upperDirectory, let work = spec.workDirectory {
            let upperBytes = try planner.layer(upper, field: "upperDirectory", splitOnColon: true)
            let workBytes = try planner.layer(work, field: "workDirectory", splitOnColon: false)
            arguments += [
                (dashO, "upperDirectory"),
                (Array("upperdir=".utf8) + FuseOverlayfsGrammar.escape(upperBytes), "upperDirectory"),
                (dashO, "workDirectory"),
                (Array("workdir=".utf8) + FuseOverlayfsGrammar.escape(workBytes), "workDirectory"),
            ]
        }
        let options = try planner.options(flags: flags)
        if !options.isEmpty {
            arguments += [
                (dashO, "options"), (Array(options.joined(separator: [FuseOverlayfsGrammar.comma])), "options"),
            ]
        }
        arguments.append((target.bytes, "target"))

        let longest = FuseOverlayfsGrammar.maximumArgumentLength(pageSize: pageSize)
        if let long = arguments.first(where: { $0.bytes.count > longest }) {
            throw UnionMountError(
                code: .optionsTooLong,
                message:
                    "fuse-overlayfs: the \(long.field) argument needs \(long.bytes.count) bytes; execve(2) takes at "
                    + "most \(longest) in one argument (MAX_ARG_STRLEN, 32 pages of \(pageSize) with the NUL)",
                input: long.field, spec: .overlay(spec))
        }
        // execve(2) counts every string with its NUL and a pointer for each, arguments and environment together.
        let strings = [program.bytes] + arguments.map(\.bytes) + FuseOverlayfsGrammar.environment
        let total = strings.reduce(0) { $0 + $1.count + 1 + MemoryLayout<UnsafeRawPointer>.size }
        if total > argumentLimit {
            throw UnionMountError(
                code: .optionsTooLong,
                message:
                    "fuse-overlayfs: arguments and environment need \(total) bytes; execve(2) takes at most "
                    + "\(argumentLimit) (ARG_MAX)",
                input: "lowerDirectories", spec: .overlay(spec))
        }
        return MountPlan(
            strategy: .fuseOverlayfs, spec: .overlay(spec),
            steps: [.spawn(program: program, arguments: arguments.map(\.bytes))])
    }
}

/// The pieces of a fuse-overlayfs command line for one spec, with the refusals ``MountPlan/fuseOverlayfs(_:target:flags:program:pageSize:argumentLimit:)``
/// documents.
struct FuseOverlayfsArguments {
    let spec: OverlaySpec

    func invalid(_ message: String, input: String) -> UnionMountError {
        UnionMountError(code: .invalidSpec, message: message, input: input, spec: .overlay(spec))
    }

    func unsupported(_ message: String, input: String) -> UnionMountError {
        UnionMountError(code: .unsupported, message: message, input: input, spec: .overlay(spec))
    }

    /// The absolute path's bytes, refused when fuse-overlayfs would read them as more than one directory.
    func layer(_ path: FilePath, field: String, splitOnColon: Bool) throws(UnionMountError) -> [UInt8] {
        let bytes = absolute(path).bytes
        guard bytes.first == FuseOverlayfsGrammar.slash else {
            throw invalid("the path is relative and the working directory is unknown", input: field)
        }
        if splitOnColon && bytes.contains(FuseOverlayfsGrammar.colon) {
            throw invalid(
                "fuse-overlayfs splits this path on ':' and has no escape for it (containers/fuse-overlayfs#440): "
                    + path.readable,
                input: field)
        }
        if bytes.starts(with: [FuseOverlayfsGrammar.slash, FuseOverlayfsGrammar.slash]) {
            throw invalid("fuse-overlayfs reads a path starting with '//' as a plugin: \(path.readable)", input: field)
        }
        return bytes
    }

    /// The options after the layers, each escaped, in the library's order: typed options, flags, raw options.
    func options(flags: MountFlags) throws(UnionMountError) -> [[UInt8]] {
        let options = spec.options
        var words: [String] = []
        func refuse(_ option: String, _ field: String) -> UnionMountError {
            unsupported("fuse-overlayfs does not implement \(option)", input: "options.\(field)")
        }
        for field in OverlayOptions.table {
            switch field.fuse(options) {
            case .none: continue
            case .word(let word): if !words.contains(word) { words.append(word) }  // volatile and fsync=volatile
            case .refused(let option): throw refuse(option, field.field)
            }
        }

        let carried: [(MountFlags, String)] = [
            (.readOnly, "ro"), (.noSetUID, "nosuid"), (.noDevices, "nodev"), (.noExecute, "noexec"),
            (.noAccessTime, "noatime"), (.noDirectoryAccessTime, "nodiratime"),
        ]
        var rest = flags
        for (flag, word) in carried where flags.contains(flag) {
            words.append(word)
            rest.remove(flag)
        }
        if !rest.isEmpty {
            throw UnionMountError(
                code: .unsupported,
                message: "fuse-overlayfs cannot apply \(rest.mountFlagNames.joined(separator: ", "))",
                input: "flags", spec: .overlay(spec))
        }

        var result = words.map { Array($0.utf8) }
        for (index, option) in options.additional.enumerated() {
            if option.key.hasPrefix("-") || option.key == "debug" {
                throw invalid(
                    "'\(option.key)' would keep fuse-overlayfs in the foreground (or is a command-line switch)",
                    input: "options.additional[\(index)]")
            }
            var word = Array(option.key.utf8)
            if let value = option.value { word += [UInt8(ascii: "=")] + FuseOverlayfsGrammar.escape(value.utf8) }
            result.append(word)
        }
        return result
    }
}
