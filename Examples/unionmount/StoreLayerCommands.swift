import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

/// `unionmount store layers`: every layer.
struct StoreLayers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "layers", abstract: "List the layers.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.run(output) {
            try $0.layers()
        } text: { layers in
            layers.map { "\($0.id)  parent=\($0.parent ?? "-")  depth=\($0.depth)  \($0.directory)" }
        }
    }
}

/// `unionmount store create-layer`: a layer imported from a directory, or empty.
struct StoreCreateLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-layer", abstract: "Create a layer, importing a layer directory (--from) or empty.")

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "The parent layer.")
    var parent: String?
    @Option(name: .long, help: ArgumentHelp("Import this layer directory (copied, never moved).", valueName: "dir"))
    var from: String?
    @Option(name: .long, help: "The whiteout format of --from: \(WhiteoutFormatArgument.help).")
    var format: WhiteoutFormatArgument = WhiteoutFormatArgument(argument: "aufs")!
    @OptionGroup var output: OutputOptions
    @Argument(help: "The new layer's id (random when omitted).")
    var id: String?

    func run() throws {
        try store.run(output) { store in
            if let from {
                return try store.importLayer(id, parent: parent, from: FilePath(from), format: format.format)
            }
            return try store.beginLayer(id, parent: parent).commit()
        } text: {
            [$0.id]
        }
    }
}

/// `unionmount store remove-layer`: remove a layer nothing uses.
struct StoreRemoveLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-layer", abstract: "Remove a layer that no layer, container or mount uses.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The layer's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            try store.removeLayer(id)
            return ["removedLayer": id]
        } text: { _ in
            ["removed layer \(id)"]
        }
    }
}

/// `unionmount store changes`: what a container changed.
struct StoreChanges: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes", abstract: "List what a container added (A), modified (C) and deleted (D).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) {
            try $0.changes(container: id)
        } text: { changes in
            changes.map { change in
                let mark =
                    switch change.kind {
                    case .added: "A"
                    case .modified: "C"
                    case .deleted: "D"
                    }
                return "\(mark) /\(change.path)"
            }
        }
    }
}

/// `unionmount store export`: a container's changes as a layer directory.
struct StoreExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a container's changes as a layer directory.")

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: ArgumentHelp("The directory to create.", valueName: "dir"))
    var to: String
    @Option(name: .long, help: "The whiteout format to write: \(WhiteoutFormatArgument.help).")
    var format: WhiteoutFormatArgument = WhiteoutFormatArgument(argument: "aufs")!
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) { store in
            try store.exportChanges(container: id, to: FilePath(to), format: format.format)
            return ["container": id, "directory": to, "format": format.format.argumentName]
        } text: { _ in
            [to]
        }
    }
}

/// `unionmount store commit`: a container's changes as a new layer on its image.
struct StoreCommit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit", abstract: "Make a new layer of a container's changes, on top of its image.")

    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("as"), help: "The new layer's id (random when omitted).")
    var layerID: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        try store.run(output) {
            try $0.commit(container: id, as: layerID)
        } text: {
            [$0.id]
        }
    }
}
