import ArgumentParser
import SystemPackage
import UnionMount

extension UnionMountCommand {
    /// `unionmount mount`: mount a union from layer lists, or show the plan.
    struct Mount: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mount an overlay (--lower/--upper/--work/--data) or aufs (--branch) union at TARGET.")

        enum Kind: String, ExpressibleByArgument, CaseIterable {
            case overlay, aufs, auto
        }

        @Option(name: .long, help: "A lower layer, top first (repeatable).")
        var lower: [String] = []
        @Option(name: .long, help: "The writable upper layer.")
        var upper: String?
        @Option(name: .long, help: "The work directory (same mount as --upper).")
        var work: String?
        @Option(name: .long, help: "A data-only layer (repeatable).")
        var data: [String] = []
        @Option(name: .long, help: "An aufs branch PATH[=PERM[+ATTR...]], top first (repeatable).")
        var branch: [String] = []
        @Option(
            name: .short,
            help: ArgumentHelp("A mount option (repeatable), e.g. -o index=off or -o userxattr.", valueName: "option"))
        var option: [String] = []
        @Option(name: .long, help: "overlay, aufs or auto (aufs when --branch is given, else overlay).")
        var type: Kind = .auto
        @Option(
            name: .long,
            help: "Force a strategy: new-mount-api, mount, mount-relative, mount-fd, aufs-mount or fuse-overlayfs.")
        var strategy: String?
        @OptionGroup var idMap: IDMapOptions
        @Option(name: .long, help: "Idmap the lower layers through this user namespace (/proc/PID/ns/user).")
        var userns: String?
        @Flag(name: .long, help: "Print the plan (each system call with its arguments) and mount nothing.")
        var dryRun = false
        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point.")
        var target: String

        func validate() throws {
            if let strategy, MountStrategy(rawValue: strategy) == nil {
                let known = MountStrategy.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("unknown strategy '\(strategy)' (known: \(known))")
            }
            let overlayLayers = !lower.isEmpty || upper != nil || work != nil || !data.isEmpty
            if lower.isEmpty && branch.isEmpty { throw ValidationError("give --lower (overlay) or --branch (aufs)") }
            if overlayLayers && !branch.isEmpty {
                throw ValidationError("--branch (aufs) excludes --lower/--upper/--work/--data (overlay)")
            }
            if type == .overlay && !branch.isEmpty {
                throw ValidationError("--type overlay takes --lower, not --branch")
            }
            if type == .aufs && overlayLayers { throw ValidationError("--type aufs takes --branch, not --lower") }
            if userns != nil && !idMap.isEmpty { throw ValidationError("--userns excludes --uid-map/--gid-map") }
            if !branch.isEmpty && (userns != nil || !idMap.isEmpty) {
                throw ValidationError("idmapped layers (--uid-map, --userns) are for overlay, not aufs")
            }
            _ = try makeSpec()  // options that do not parse are usage errors, reported with this command's usage
        }

        func run() throws {
            let spec = try makeSpec()
            let mounter = Mounter()
            let target = FilePath(self.target)
            let strategy = self.strategy.flatMap(MountStrategy.init(rawValue:))
            let plan = try reportingFailures { try mounter.plan(spec, at: target, strategy: strategy) }
            if dryRun {
                if output.json { return try printJSON(plan) }
                print("strategy: \(plan.strategy.rawValue)")
                if let rung = plan.idMappedLayers { print("idmapped layers: \(rung.rawValue)") }
                plan.steps.forEach { print("  \($0.systemCall) \(describe($0))") }
                return
            }
            try reportingFailures { try mounter.execute(plan) }
            if output.json { return try printJSON(plan) }
            let idmapped = plan.idMappedLayers.map { " (idmapped layers: \($0.rawValue))" } ?? ""
            print("mounted \(spec.filesystemType) at \(target) with \(plan.strategy.rawValue)\(idmapped)")
        }

        /// The spec the options describe; options that do not parse are bad usage (exit 64).
        private func makeSpec() throws -> UnionSpec {
            if !branch.isEmpty {
                let branches = try aufsBranches(branch)
                let parsed: AufsSpec
                do {
                    parsed = try AufsSpec(optionString: Array(option.joined(separator: ",").utf8))
                } catch {
                    throw ValidationError("\(error)")
                }
                if !parsed.branches.isEmpty { throw ValidationError("give branches with --branch, not with -o") }
                return .aufs(AufsSpec(branches: branches, options: parsed.options))
            }
            let parsed: OverlaySpec
            do {
                parsed = try OverlaySpec(legacyOptionString: Array(option.joined(separator: ",").utf8))
            } catch {
                throw ValidationError("\(error)")
            }
            if !parsed.allDirectories.isEmpty {
                throw ValidationError("give layers with --lower/--upper/--work/--data, not with -o")
            }
            return .overlay(
                OverlaySpec(
                    lowerDirectories: lower.map { FilePath($0) }, dataDirectories: data.map { FilePath($0) },
                    upperDirectory: upper.map { FilePath($0) }, workDirectory: work.map { FilePath($0) },
                    options: parsed.options, idMapping: try idMapping()))
        }

        /// The mapping `--uid-map`/`--gid-map` or `--userns` give.
        private func idMapping() throws -> IDMapping? {
            if let userns { return .userNamespace(FilePath(userns)) }
            return try idMap.mapping()
        }
    }
}

/// One plan step's arguments as text.
func describe(_ step: MountStep) -> String {
    switch step {
    case .fsopen(let type): "\"\(type)\""
    case .setFlag(let key): "FSCONFIG_SET_FLAG \(key)"
    case .setString(let key, let value): "FSCONFIG_SET_STRING \(key)=\(String(decoding: value, as: UTF8.self))"
    case .setFileDescriptor(let key, let path): "FSCONFIG_SET_FD \(key) fd(\(path))"
    case .create: "FSCONFIG_CMD_CREATE"
    case .fsmount(let attributes): "attributes=\(attributes.mountAttributeNames.joined(separator: "|"))"
    case .moveMount(let target): "-> \(target)"
    case .openDescriptor(let path, let number): "\(path) O_PATH|O_DIRECTORY -> fd \(number)"
    case .mount(let source, let target, let type, let flags, let data, let directory):
        "source=\(source) target=\(target) type=\(type) flags=\(flags.mountFlagNames.joined(separator: "|")) "
            + "data=\(String(decoding: data, as: UTF8.self)) (\(data.count) bytes)"
            + (directory.map { " cwd=\($0)" } ?? "")
    case .spawn(let program, let arguments):
        ([program.string] + arguments.map { String(decoding: $0, as: UTF8.self) }).joined(separator: " ")
    case .createUserNamespace(let uids, let gids):
        "CLONE_NEWUSER helper, uid_map \(IDRange.text(uids)) gid_map \(IDRange.text(gids))"
    case .openUserNamespace(let path): "\(path) (user namespace)"
    case .openTree(let path): "\(path) OPEN_TREE_CLONE -> tree"
    case .setIDMap: "tree MOUNT_ATTR_IDMAP userns"
    case .setTree(let key): "FSCONFIG_SET_FD \(key) tree"
    case .attachTree(let target): "tree -> \(target)"
    case .makeDirectory(let path), .removeDirectory(let path): "\(path)"
    case .detach(let target): "\(target) MNT_DETACH"
    case .mountAttachments(let target): "tmpfs at \(target) mode=700, then MS_PRIVATE"
    @unknown default:  // MountStep gains cases as the library learns new system calls.
        "(a step this example does not know)"
    }
}
