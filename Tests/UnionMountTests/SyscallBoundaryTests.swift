import Foundation
import Testing

/// Every libc and shim call goes through `Sources/UnionMount/Syscalls/`: this reads the sources and fails when
/// a file anywhere else imports Glibc, Musl or the C shim (the C targets themselves excepted).
@Suite struct SyscallBoundaryTests {
    /// Where libc and the shim belong.
    static let allowed: Set<String> = ["UnionMount/Syscalls", "CUnionMountShim", "CLibMount"]

    static let sources = URL(fileURLWithPath: packageRoot.string).appendingPathComponent("Sources")

    /// The Swift files below `Sources/`, by path relative to it.
    static func swiftFiles() throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: sources.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.sorted()
    }

    /// The libc or shim modules a file imports (`import Glibc`, `@preconcurrency import Musl`, …).
    static func systemImports(_ text: String) -> [String] {
        var found: [String] = []
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init).filter { !$0.hasPrefix("@") }
            guard words.count >= 2, words[0] == "import" else { continue }
            if ["Glibc", "Musl", "CUnionMountShim"].contains(words[1]) { found.append(words[1]) }
        }
        return found
    }

    @Test("no source file outside Syscalls/ imports Glibc, Musl or the shim")
    func onlySyscallsImportsLibc() throws {
        let files = try Self.swiftFiles()
        #expect(files.count > 50, "the sources were not found at \(Self.sources.path)")
        var violations: [String] = []
        for file in files {
            let folder = file.split(separator: "/").prefix(2).joined(separator: "/")
            let target = String(file.split(separator: "/")[0])
            if Self.allowed.contains(folder) || Self.allowed.contains(target) {
                continue
            }
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            for module in Self.systemImports(text) { violations.append("\(file) imports \(module)") }
        }
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
    }

    /// The check sees an import: the lines a file in scope would have if it went back to libc.
    @Test func theCheckSeesImports() {
        let text = "import SystemPackage\n#if canImport(Glibc)\n    import Glibc\n#endif\n@preconcurrency import Musl\n"
        #expect(Self.systemImports(text) == ["Glibc", "Musl"])
        #expect(Self.systemImports("import CUnionMountShim\nimport UnionMount\n") == ["CUnionMountShim"])
        #expect(Self.systemImports("// import Glibc is not needed here\n") == [])
    }
}
