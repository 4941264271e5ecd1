import ArgumentParser
import SystemPackage
import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

/// `unionmount store containers`: every container and its mount count.
struct StoreContainers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "containers", abstract: "List the containers.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try store.open()
        let containers = try reportingFailures { try store.containers() }
        if output.json { return try printJSON(containers) }
        for container in containers {
            print(
                "\(container.id)  layer=\(container.layer ?? "-")  mounts=\(container.mountCount)  \(container.mergedDirectory)"
            )
        }
    }
}

/// `unionmount store create-container`: a container on an image layer, with an optional init layer.
struct StoreCreateContainer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-container", abstract: "Create a container on an image layer.")

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "The image's top layer (none: an empty image).")
    var image: String?
    @Option(
        name: .customLong("init-from"),
        help: ArgumentHelp("Give the container an init layer <id>-init copied from this directory.", valueName: "dir"))
    var initFrom: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id (random when omitted).")
    var id: String?

    func run() throws {
        let store = try store.open()
        let initialize: ((FilePath) throws -> Void)? = initFrom.map { source in
            { directory in
                _ = directory.withPlatformString { rmdir($0) }
                try LayerTree.copy(from: FilePath(source), to: directory)
            }
        }
        let container: StoreContainer
        do {
            container = try store.createContainer(id, image: image, initialize: initialize)
        } catch let error as UnionMountError {
            throw failing(error)
        }
        if output.json { try printJSON(container) } else { print(container.id) }
    }
}

/// `unionmount store remove-container`: remove an unmounted container.
struct StoreRemoveContainer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-container", abstract: "Remove a container that is not mounted, and its init layer.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        let store = try store.open()
        try reportingFailures { try store.removeContainer(id) }
        if output.json { try printJSON(["removedContainer": id]) } else { print("removed container \(id)") }
    }
}

/// `unionmount store mount`: mount a container (or take one more reference) and print its root.
struct StoreMount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount", abstract: "Mount a container (one more reference when mounted) and print its root.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        let store = try store.open()
        let merged = try reportingFailures { try store.mount(container: id) }
        let count = try reportingFailures { try store.container(id).mountCount }
        if output.json {
            try printJSON(MountReport(container: id, merged: merged.string, mountCount: count))
        } else {
            print(merged)
        }
    }
}

struct MountReport: Encodable {
    var container: String
    var merged: String
    var mountCount: Int
}

/// `unionmount store unmount`: drop a reference; the last one unmounts.
struct StoreUnmount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Drop one reference to a container's mount; the last one unmounts it.")

    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Detach (MNT_DETACH) when the mount stays busy.")
    var lazy = false
    @OptionGroup var output: OutputOptions
    @Argument(help: "The container's id.")
    var id: String

    func run() throws {
        let store = try store.open()
        let unmounted = try reportingFailures { try store.unmount(container: id, lazy: lazy) }
        let count = try reportingFailures { try store.container(id).mountCount }
        if output.json {
            try printJSON(["container": id, "unmounted": String(unmounted), "mountCount": String(count)])
        } else {
            print(unmounted ? "unmounted \(id)" : "\(id) still has \(count) reference(s)")
        }
    }
}
