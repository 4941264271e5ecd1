import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

extension UnionMountCommand {
    /// `unionmount store`: a layer store of image layers and containers, shared by every process using it.
    struct Store: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Import images, create layers, stack containers on them, mount, list changes, repair after crashes.",
            discussion: """
                Every subcommand takes --root DIR (the store); the first use creates it with the backend probed \
                here (overlay, overlay-userxattr, fuse-overlayfs or aufs) unless --backend says which, and later \
                processes keep it. Opening a store repairs what a crashed process left behind.
                """,
            subcommands: [
                StoreInfo.self, StoreRepair.self, StoreCheck.self, StoreLayers.self, StoreCreateLayer.self,
                StoreRemoveLayer.self, StoreContainers.self, StoreCreateContainer.self, StoreRemoveContainer.self,
                StoreMount.self, StoreUnmount.self, StoreChanges.self, StoreExport.self, StoreCommit.self,
                StoreImport.self, StoreImages.self, StoreRemoveImage.self, StorePrune.self, StoreExportImage.self,
                StoreExportLayer.self, StoreChurn.self,
            ])
    }
}

/// The store every `store` subcommand works on.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store's root directory (absolute).", valueName: "dir"))
    var root: String
    @Option(name: .long, help: "The backend when the store is created: \(backendNames).")
    var backend: String?

    static let backendNames = LayerStoreBackend.allCases.map(\.rawValue).joined(separator: ", ")

    func validate() throws {
        guard FilePath(root).isAbsolute else { throw ValidationError("--root must be an absolute path") }
        if let backend, LayerStoreBackend(rawValue: backend) == nil {
            throw ValidationError("unknown backend '\(backend)' (known: \(Self.backendNames))")
        }
    }

    /// Opens (creating when missing) the store.
    func open() throws -> LayerStore {
        try reportingFailures {
            try LayerStore.create(at: FilePath(root), backend: backend.flatMap(LayerStoreBackend.init(rawValue:)))
        }
    }

    /// Opens the store, runs `body` (a ``UnionMountError`` becomes exit 1) and prints its result: JSON with
    /// `--json`, else the lines `text` makes of it.
    func run<Result: Encodable>(
        _ output: OutputOptions, _ body: (LayerStore) throws -> Result, text: (Result) -> [String]
    ) throws {
        let store = try open()
        let result = try reportingFailures { try body(store) }
        if output.json { try printJSON(result) } else { text(result).forEach { print($0) } }
    }
}

/// A whiteout format named on the command line.
struct WhiteoutFormatArgument: ExpressibleByArgument {
    var format: WhiteoutFormat

    init?(argument: String) {
        switch argument {
        case "aufs", "oci": format = .aufs
        case "overlay", "overlay-trusted": format = .overlayTrusted
        case "overlay-user": format = .overlayUser
        default: return nil
        }
    }

    static let help = "aufs (alias oci: .wh. files), overlay-trusted (alias overlay) or overlay-user"
}

extension WhiteoutFormat {
    /// The name the command line uses.
    var argumentName: String {
        switch self {
        case .aufs: "aufs"
        case .overlay(let prefix): prefix == "user." ? "overlay-user" : "overlay-trusted"
        }
    }
}

/// `unionmount store info`: the store's backend and format, and what opening it repaired.
struct StoreInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Create or open the store; print its backend, format and repairs.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var root: String
        var backend: String
        var whiteoutFormat: String
        var layers: Int
        var containers: Int
        var repairs: RepairReport
    }

    func run() throws {
        try store.run(output) { store in
            Report(
                root: store.root.string, backend: store.backend.rawValue,
                whiteoutFormat: store.whiteoutFormat.argumentName, layers: try store.layers().count,
                containers: try store.containers().count, repairs: store.repairReport)
        } text: { report in
            [
                "\(report.root): backend \(report.backend), whiteouts \(report.whiteoutFormat)",
                "\(report.layers) layer(s), \(report.containers) container(s)",
            ] + repairLines(report.repairs)
        }
    }
}

/// `unionmount store repair`: repair again (opening already does) and print what was done.
struct StoreRepair: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair", abstract: "Repair what crashed processes left behind; print the repairs.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) { store in
            var report = store.repairReport
            let again = try store.repair()
            report.actions += again.actions
            report.problems += again.problems
            return report
        } text: {
            repairLines($0)
        }
    }
}

/// `unionmount store check`: verify the store's invariants; exit 1 when one fails.
struct StoreCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check the store's invariants (exit 1 when one does not hold).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try store.open()
        let problems = try reportingFailures { try store.check() }
        if output.json { try printJSON(["problems": problems]) } else { problems.forEach { print($0) } }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

/// A repair report as text lines.
func repairLines(_ report: RepairReport) -> [String] {
    report.actions.map { "repaired: \($0)" } + report.problems.map { "problem: \($0)" }
}
