import Foundation
import Testing

/// The shell commands in `README.md`, `Benchmarks/README.md` and `Examples/unionmount/README.md` run as written: each `swift build` builds one
/// product that `Package.swift` defines (`swift build` takes one `--product`; a second silently wins), and each
/// `.build/release/<name>` a block runs was built by a line before it in the same block.
@Suite struct DocumentedCommandTests {
    static let root = URL(fileURLWithPath: packageRoot.string)

    /// The lines of every ```` ```sh ```` block of a file, one array per block.
    static func shellBlocks(_ name: String) throws -> [[String]] {
        let text = try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
        var blocks: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line.hasPrefix("```sh") {
                current = []
            } else if line.hasPrefix("```"), let block = current {
                blocks.append(block)
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// The executable products `Package.swift` declares.
    static func executables() throws -> Set<String> {
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var names: Set<String> = []
        var rest = manifest[...]
        while let target = rest.range(of: ".executableTarget(") {
            rest = rest[target.upperBound...]
            guard let open = rest.range(of: "name: \""), let close = rest[open.upperBound...].firstIndex(of: "\"")
            else { break }
            names.insert(String(rest[open.upperBound..<close]))
        }
        return names
    }

    @Test(arguments: ["README.md", "Benchmarks/README.md", "Examples/unionmount/README.md"])
    func buildLinesBuildOneKnownProductEach(file: String) throws {
        let products = try Self.executables()
        #expect(products.contains("unionmount-bench"))
        for block in try Self.shellBlocks(file) {
            var built: Set<String> = []
            for line in block {
                let words = line.split(separator: " ").map(String.init)
                if words.starts(with: ["swift", "build"]) {
                    let named = words.indices.filter { words[$0] == "--product" }.map { words[$0 + 1] }
                    #expect(named.count <= 1, "\(file): one --product per swift build: \(line)")
                    for product in named {
                        #expect(products.contains(product), "\(file): no product \(product): \(line)")
                        built.insert(product)
                    }
                }
                for word in words where word.hasPrefix(".build/release/") {
                    let product = String(word.dropFirst(".build/release/".count))
                    #expect(built.contains(product), "\(file): \(product) is run but not built before: \(line)")
                }
            }
        }
    }

    @Test func readmeOpensWithTheTwoSetUpCommands() throws {
        let first = try #require(try Self.shellBlocks("README.md").first)
        let commands = first.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(commands.count == 2)
        #expect(commands.first?.hasPrefix("bash .ci/demo") == true)
        // The demo script installs the system libraries, then runs the demo itself.
        let demo = try String(contentsOfFile: packageRoot.appending(".ci/demo").string, encoding: .utf8)
        #expect(demo.contains("exec swift run unionmount demo"))
        #expect(commands.last?.hasPrefix("bash .ci/test") == true)
    }
}
