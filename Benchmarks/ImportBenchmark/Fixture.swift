import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A synthetic five-layer image of Debian's shape: directories two to four deep, file sizes drawn from a
/// rootfs-like distribution (most files small, a few megabytes), text-like contents that gzip about as well as
/// binaries and docs do, symbolic links, hard links, and in the upper layers whiteouts and an opaque directory.
struct ImageTree {
    /// The layer directories, bottom first.
    var layers: [FilePath] = []
    var files = 0
    var bytes = 0

    /// A deterministic generator (xorshift64*).
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    }

    /// A file size: 55 % under 2 KiB, 30 % 2–16 KiB, 12 % 16–128 KiB, 2.7 % 128–512 KiB, 0.3 % 1–4 MiB.
    static func size(_ random: inout Random) -> Int {
        let bucket = random.below(1000)
        switch bucket {
        case ..<550: return random.below(2048)
        case ..<850: return 2048 + random.below(14 * 1024)
        case ..<970: return 16 * 1024 + random.below(112 * 1024)
        case ..<997: return 128 * 1024 + random.below(384 * 1024)
        default: return (1 << 20) + random.below(3 << 20)
        }
    }

    init(in directory: FilePath, filesPerLayer: [Int]) throws {
        var random = Random(state: 0x9E37_79B9_7F4A_7C15)
        // Text-like material: words of 2–9 lowercase letters.
        var text: [UInt8] = []
        text.reserveCapacity(8 << 20)
        while text.count < 8 << 20 {
            for _ in 0..<(2 + random.below(8)) { text.append(UInt8(ascii: "a") + UInt8(random.below(26))) }
            text.append(random.below(12) == 0 ? 10 : 32)
        }
        let tops = ["usr/lib", "usr/share/doc", "usr/share/locale", "usr/bin", "etc", "var/lib", "usr/include", "opt"]
        for (index, count) in filesPerLayer.enumerated() {
            let layer = directory.appending("layer\(index + 1)")
            layers.append(layer)
            var made: [String] = []
            for number in 0..<count {
                let top = tops[random.below(tops.count)]
                let sub = "pkg\(random.below(60))/d\(random.below(6))"
                let parent = layer.appending(top).appending(sub)
                try Self.makeDirectories(parent)
                let name = "f\(index)-\(number)"
                let path = parent.appending(name)
                let length = Self.size(&random)
                let start = random.below(text.count - length - 1)
                try Self.write(path, text[start..<(start + length)])
                bytes += length
                files += 1
                made.append("\(top)/\(sub)/\(name)")
                if random.below(20) == 0 {
                    _ = symlink(name, parent.appending(name + ".link").string)
                } else if random.below(50) == 0 {
                    _ = link(path.string, parent.appending(name + ".hard").string)
                }
            }
            if index > 0 {
                // Whiteouts of some lower files, and one opaque directory.
                for whiteout in 0..<20 {
                    let parent = layer.appending(tops[whiteout % tops.count])
                    try Self.makeDirectories(parent)
                    try Self.write(parent.appending(".wh.gone\(whiteout)"), [][...])
                }
                let opaque = layer.appending("usr/share/locale/pkg\(index)")
                try Self.makeDirectories(opaque)
                try Self.write(opaque.appending(".wh..wh..opq"), [][...])
            }
        }
    }

    static func makeDirectories(_ path: FilePath) throws {
        var current = FilePath("/")
        for component in path.components {
            current.append(component)
            if mkdir(current.string, 0o755) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
        }
    }

    static func write(_ path: FilePath, _ bytes: ArraySlice<UInt8>) throws {
        let fd = open(path.string, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { buffer in
            while done < buffer.count {
                let count = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                guard count > 0 else { throw Errno(rawValue: errno) }
                done += count
            }
        }
    }
}

/// Runs a shell command line; false when it fails.
@discardableResult
func shell(_ command: String) -> Bool {
    system(command) == 0
}

/// The first line a command prints.
func output(_ command: String) -> String {
    guard let pipe = popen(command, "r") else { return "" }
    defer { pclose(pipe) }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard fgets(&buffer, Int32(buffer.count), pipe) != nil else { return "" }
    let line = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: line, as: UTF8.self).trimmingCharacters(in: "\n")
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var text = self
        while text.last == set { text.removeLast() }
        return text
    }
}
