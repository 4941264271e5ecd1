import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

/// The layer-tar options `export-image` and `export-layer` share.
struct LayerTarOptions: ParsableArguments {
    @Flag(name: .long, help: "Compress layer tars with zstd instead of gzip (OCI layouts and layer files).")
    var zstd = false
    @Flag(name: .long, help: "Write plain, uncompressed layer tars.")
    var uncompressed = false
    @Option(
        name: .customLong("clamp-times"),
        help: ArgumentHelp(
            "Write modification times later than this (seconds since the epoch, like SOURCE_DATE_EPOCH) as it.",
            valueName: "seconds"))
    var clampTimes: Int64?

    func validate() throws {
        if zstd && uncompressed { throw ValidationError("--zstd and --uncompressed exclude each other") }
    }

    var options: LayerExportOptions {
        LayerExportOptions(compression: zstd ? .zstd : uncompressed ? .none : .gzip, clampTimes: clampTimes)
    }
}

/// `unionmount store export-image`: an image as an OCI layout or a docker archive.
struct StoreExportImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-image",
        abstract: "Write an image as an OCI image layout (--oci-layout DIR[:TAG]) or a docker save archive.",
        discussion: """
            Layer tars are regenerated from the store's layer directories, so an imported image's layer digests, \
            diff ids and config digest differ from the imported ones (the written config names the written tars). \
            A docker archive holds plain layer tars, as docker save writes them.
            """)

    @OptionGroup var store: StoreOptions
    @Option(
        name: .customLong("oci-layout"), help: ArgumentHelp("The layout to write or add to.", valueName: "dir[:tag]"))
    var ociLayout: String?
    @Option(name: .customLong("docker-archive"), help: ArgumentHelp("The archive to write.", valueName: "file"))
    var dockerArchive: String?
    @Option(name: .long, help: "The docker archive's repo tag (default: the image's name).")
    var tag: String?
    @OptionGroup var tars: LayerTarOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The image's name (name[:tag]).")
    var name: String

    func validate() throws {
        guard (ociLayout == nil) != (dockerArchive == nil) else {
            throw ValidationError("give exactly one of --oci-layout and --docker-archive")
        }
        if dockerArchive != nil && (tars.zstd || tars.uncompressed) {
            throw ValidationError(
                "a docker archive always holds plain layer tars: --zstd and --uncompressed do not apply")
        }
        if ociLayout != nil && tag != nil {
            throw ValidationError("--tag is for --docker-archive; use --oci-layout DIR:TAG")
        }
    }

    /// `DIR[:TAG]`: the tag is after the last `:` when what follows it has no `/`.
    static func layoutArgument(_ text: String) -> (FilePath, String?) {
        guard let colon = text.lastIndex(of: ":"), !text[text.index(after: colon)...].contains("/") else {
            return (FilePath(text), nil)
        }
        let tag = String(text[text.index(after: colon)...])
        return (FilePath(String(text[..<colon])), tag.isEmpty ? nil : tag)
    }

    func run() throws {
        let destination: ImageDestination
        if let ociLayout {
            let (directory, tag) = Self.layoutArgument(ociLayout)
            destination = .ociLayout(directory, tag: tag)
        } else {
            destination = .dockerArchive(FilePath(dockerArchive ?? ""), tag: tag)
        }
        try store.run(output) {
            try $0.exportImage(named: name, to: destination, options: tars.options)
        } text: { image in
            [
                "\(image.name) -> \(ociLayout ?? dockerArchive ?? "") tag \(image.tag)",
                "manifest \(image.manifestDigest)",
                "config \(image.configDigest)",
            ]
                + image.layers.map { "layer \($0.digest) diff id \($0.diffID) \($0.size) bytes" }
        }
    }
}

/// `unionmount store export-layer`: one layer as an OCI layer tar.
struct StoreExportLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-layer", abstract: "Write one layer (its own contents) as an OCI layer tar.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var tars: LayerTarOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The layer's id.")
    var id: String
    @Argument(help: "The tar file to create (it must not exist).")
    var file: String

    func run() throws {
        try store.run(output) {
            try $0.exportLayer(id, to: FilePath(file), options: tars.options)
        } text: { layer in
            ["\(file): \(layer.digest) \(layer.size) bytes, diff id \(layer.diffID), \(layer.entries) entries"]
        }
    }
}
