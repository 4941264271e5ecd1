import UnionMount

/// The platform an image runs on, as an index entry's `platform` or a config's `os`/`architecture` give it, in
/// Go's names (`linux`, `amd64`, `arm64`, `arm` with variant `v7`).
public struct ImagePlatform: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The operating system, `linux`.
    public var os: String
    /// The CPU architecture, `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, …
    public var architecture: String
    /// The CPU variant, `v7` for 32-bit arm, `v8` for arm64; nil when not given.
    public var variant: String?
    /// `os.version` (Windows builds).
    public var osVersion: String?
    /// `os.features`.
    public var osFeatures: [String]?

    /// A platform.
    public init(
        os: String, architecture: String, variant: String? = nil, osVersion: String? = nil,
        osFeatures: [String]? = nil
    ) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
    }

    private enum CodingKeys: String, CodingKey {
        case os, architecture, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// `os/architecture[/variant]`.
    public var description: String { "\(os)/\(architecture)" + (variant.map { "/" + $0 } ?? "") }

    /// `linux/amd64`.
    public static let linuxAMD64 = ImagePlatform(os: "linux", architecture: "amd64")

    /// This machine: `linux` and the architecture uname(2) reports, in Go's names (`x86_64` → `amd64`,
    /// `aarch64` → `arm64`, `armv7l` → `arm` `v7`, `i686` → `386`, …; see ``init(unameMachine:)``).
    public static let host = ImagePlatform(unameMachine: ProcessFacts.machine)

    /// The Linux platform of a uname(2) `machine` name: `x86_64` → `amd64`; `aarch64`/`arm64` → `arm64`;
    /// `armv8l`/`armv7l`/`armv6l`/`armv5tel` → `arm` `v8`/`v7`/`v6`/`v5`; `i386`…`i686` → `386`; `ppc64le`,
    /// `s390x`, `riscv64`, `mips64` as they are; `loongarch64` → `loong64`; anything else as it is.
    public init(unameMachine machine: String) {
        let arm: [String: String] = ["armv8l": "v8", "armv7l": "v7", "armv7": "v7", "armv6l": "v6", "armv5tel": "v5"]
        switch machine {
        case "x86_64", "amd64": self.init(os: "linux", architecture: "amd64")
        case "aarch64", "arm64": self.init(os: "linux", architecture: "arm64")
        case "i386", "i486", "i586", "i686": self.init(os: "linux", architecture: "386")
        case "loongarch64": self.init(os: "linux", architecture: "loong64")
        default:
            if let variant = arm[machine] {
                self.init(os: "linux", architecture: "arm", variant: variant)
            } else {
                self.init(os: "linux", architecture: machine)
            }
        }
    }

    /// Parses `os/architecture[/variant]` (`linux/arm64`, `linux/arm/v7`), as a caller names a platform.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` naming `input` for any other shape, or a part that is
    ///   not 1 to 64 of `[A-Za-z0-9_.-]`.
    public init(parsing text: String, input: String = "platform") throws(UnionMountError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy(Self.isName) else {
            throw UnionMountError.invalidArgument(
                "\(text.debugDescription) is not a platform of the form os/architecture[/variant]", input: input)
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    /// Whether `name` may be a platform part: 1 to 64 of `[A-Za-z0-9_.-]`.
    static func isName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                JSONReader.isDigit($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F
                    || $0 == 0x2E || $0 == 0x2D
            }
    }

    /// The platform with containerd's normalization: `os` lowercased, architecture aliases folded
    /// (`x86_64`/`x86-64` → `amd64`, `aarch64` → `arm64`, `i386` → `386`, `armhf` → `arm` `v7`, `armel` → `arm`
    /// `v6`), and arm64's default variant `v8` made explicit (so `arm64` and `arm64/v8` compare equal).
    public var normalized: ImagePlatform {
        var platform = self
        platform.os = os.lowercased()
        switch architecture.lowercased() {
        case "x86_64", "x86-64", "amd64": platform.architecture = "amd64"
        case "aarch64", "arm64":
            platform.architecture = "arm64"
            if platform.variant == nil || platform.variant == "8" { platform.variant = "v8" }
        case "i386", "386": platform.architecture = "386"
        case "armhf":
            platform.architecture = "arm"
            platform.variant = platform.variant ?? "v7"
        case "armel":
            platform.architecture = "arm"
            platform.variant = platform.variant ?? "v6"
        case let other: platform.architecture = other
        }
        if platform.architecture == "arm", let variant = platform.variant, !variant.hasPrefix("v") {
            platform.variant = "v" + variant
        }
        return platform
    }

    /// How well an image for `candidate` runs on this platform: nil when it does not, else a rank where lower is
    /// better.
    ///
    /// OS and architecture must be equal (after ``normalized``). The variant: the same one ranks 0; a candidate
    /// without a variant ranks 1 (it claims nothing special); for 32-bit `arm`, a lower variant runs too (v7
    /// runs v6 and v5), ranked 2 and up by distance; for `amd64`, `v1` is the baseline every CPU runs (rank 1),
    /// while `v2`–`v4` need CPU features and match only when asked for. When this platform names no variant,
    /// any candidate variant that the baseline runs matches.
    public func rank(_ candidate: ImagePlatform) -> Int? {
        let wanted = normalized
        let offered = candidate.normalized
        guard wanted.os == offered.os, wanted.architecture == offered.architecture else { return nil }
        if wanted.variant == offered.variant { return 0 }
        guard let variant = offered.variant else { return 1 }
        if wanted.architecture == "amd64" && variant == "v1" { return 1 }
        if wanted.architecture == "arm", let want = Self.armLevel(wanted.variant ?? "v7"),
            let have = Self.armLevel(variant), have <= want
        {
            return 2 + (want - have)
        }
        return nil
    }

    private static func armLevel(_ variant: String) -> Int? {
        guard variant.hasPrefix("v") else { return nil }
        return Int(variant.dropFirst())
    }

    /// Reads a descriptor's `platform` object: `os` and `architecture` (required), `variant`, `os.version`,
    /// `os.features`. Every name part must be 1 to 64 of `[A-Za-z0-9_.-]`.
    init(json object: JSONObjectField) throws(UnionMountError) {
        func name(_ key: String, required: Bool) throws(UnionMountError) -> String? {
            guard let field = required ? try object.required(key) : try object.optional(key) else { return nil }
            let text = try field.string()
            guard Self.isName(text) else { throw field.malformed("not a platform name: \(text.debugDescription)") }
            return text
        }
        guard let os = try name("os", required: true), let architecture = try name("architecture", required: true)
        else { throw object.field.malformed("no platform") }
        self.init(
            os: os, architecture: architecture, variant: try name("variant", required: false),
            osVersion: try object.optional("os.version")?.string(),
            osFeatures: try object.optional("os.features")?.strings())
    }
}
