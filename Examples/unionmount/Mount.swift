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
        @Option(name: .short, help: "A mount option (repeatable), e.g. -o index=off or -o userxattr.")
        var option: [String] = []
        @Option(name: .long, help: "overlay, aufs or auto (aufs when --branch is given).")
        var type: Kind = .auto
        @Option(name: .long, help: "Force a strategy: new-mount-api, mount, mount-relative or aufs-mount.")
        var strategy: String?
        @Flag(name: .long, help: "Print the plan (each system call with its arguments) and mount nothing.")
        var dryRun = false
        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point.")
        var target: String

        func validate() throws {
            if let strategy, MountStrategy(rawValue: strategy) == nil {
                throw ValidationError("unknown strategy '\(strategy)'")
            }
            if lower.isEmpty && branch.isEmpty { throw ValidationError("give --lower or --branch") }
        }

        func run() throws {
            let spec: UnionSpec
            do {
                spec = try makeSpec()
            } catch {
                throw ValidationError("\(error)")
            }
            let mounter = Mounter()
            do {
                let target = FilePath(self.target)
                let strategy = self.strategy.flatMap(MountStrategy.init(rawValue:))
                let plan = try mounter.plan(spec, at: target, strategy: strategy)
                if output.json {
                    if dryRun { return try printJSON(plan) }
                } else {
                    print("strategy: \(plan.strategy.rawValue)")
                    if dryRun { plan.steps.forEach { print("  \($0.systemCall) \(describe($0))") } }
                }
                if !dryRun {
                    try mounter.execute(plan, for: spec)
                    if output.json { try printJSON(plan) } else { print("mounted at \(target)") }
                }
            } catch let error as UnionMountError {
                throw failing(error)
            }
        }

        private func makeSpec() throws -> UnionSpec {
            let useAufs = type == .aufs || (type == .auto && !branch.isEmpty)
            if useAufs {
                let joined = "br:" + branch.joined(separator: ":") + option.map { "," + $0 }.joined()
                return .aufs(try AufsSpec(optionString: Array(joined.utf8)))
            }
            var options = OverlayOptions()
            if !option.isEmpty {
                options = try OverlaySpec(legacyOptionString: Array(option.joined(separator: ",").utf8)).options
            }
            return .overlay(
                OverlaySpec(
                    lowerDirectories: lower.map { FilePath($0) }, dataDirectories: data.map { FilePath($0) },
                    upperDirectory: upper.map { FilePath($0) }, workDirectory: work.map { FilePath($0) },
                    options: options))
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
    case .mount(let source, let target, let type, let flags, let data, let directory):
        "source=\(source) target=\(target) type=\(type) flags=\(flags.mountFlagNames.joined(separator: "|")) "
            + "data=\(String(decoding: data, as: UTF8.self)) (\(data.count) bytes)"
            + (directory.map { " cwd=\($0)" } ?? "")
    }
}
