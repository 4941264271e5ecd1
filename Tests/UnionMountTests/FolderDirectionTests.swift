import Foundation
import Testing

/// The folders of `Sources/UnionMount` (and, separately, of `Sources/UnionMountStore`, which the compiler already
/// keeps from being used by `UnionMount`) depend in one direction. One module has no imports to enforce that, so
/// this test reads the sources: for each folder, the names it declares at top level or as types (nested ones
/// included), then, for each file, the identifiers it uses outside comments and string literals. A file that
/// uses a name declared in exactly one other folder depends on that folder, and that folder must come earlier
/// in ``FolderDirectionTests/order``.
///
/// `Errors/` is the vocabulary every folder throws, so any folder may use it; it in turn may only hold values
/// of the folders listed in ``FolderDirectionTests/errorsMayHold`` (the spec, the plan and the diagnosis an
/// error carries).
@Suite struct FolderDirectionTests {
    /// Every folder, each allowed to use only the ones before it.
    static let order = [
        "Support", "Syscalls", "Spec", "OptionStrings", "Kernel", "Plan", "Diagnosis", "MountTable", "Execute",
        "Report",
    ]
    /// The folders of the `UnionMountStore` target, in the same sense.
    static let storeOrder = ["Layers", "Archive", "Images", "Tree", "Store"]
    static let errorsMayHold: Set<String> = ["Spec", "Plan", "Diagnosis"]

    static let package = URL(fileURLWithPath: packageRoot.string)
    static let sources = package.appendingPathComponent("Sources/UnionMount")
    static let storeSources = package.appendingPathComponent("Sources/UnionMountStore")

    @Test func storeFoldersDependInOneDirection() throws {
        let graph = try DependencyGraph(root: Self.storeSources)
        #expect(Set(graph.folders) == Set(Self.storeOrder), "a new folder needs a place in `storeOrder`")
        #expect(graph.edges["Store"]?["Layers"] != nil)
        for (folder, targets) in graph.edges {
            for (target, names) in targets {
                let from = try #require(Self.storeOrder.firstIndex(of: folder))
                let to = try #require(Self.storeOrder.firstIndex(of: target))
                #expect(to < from, "\(folder) → \(target): \(names.sorted().joined(separator: ", "))")
            }
        }
    }

    @Test func everyDependencyPointsToAnEarlierFolder() throws {
        let graph = try DependencyGraph(root: Self.sources)
        #expect(Set(graph.folders) == Set(Self.order + ["Errors"]), "a new folder needs a place in `order`")
        var violations: [String] = []
        for (folder, targets) in graph.edges.sorted(by: { $0.key < $1.key }) {
            for (target, names) in targets.sorted(by: { $0.key < $1.key }) {
                if target == "Errors" { continue }
                let allowed: Bool
                if folder == "Errors" {
                    allowed = Self.errorsMayHold.contains(target)
                } else if let from = Self.order.firstIndex(of: folder), let to = Self.order.firstIndex(of: target) {
                    allowed = to < from
                } else {
                    allowed = false
                }
                if !allowed { violations.append("\(folder) → \(target): \(names.sorted().joined(separator: ", "))") }
            }
        }
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
    }

    /// The check itself finds a dependency: Execute uses Plan's `MountPlan`, and Plan uses nothing of Execute.
    @Test func theCheckSeesKnownEdges() throws {
        let graph = try DependencyGraph(root: Self.sources)
        #expect(graph.edges["Execute"]?["Plan"]?.contains("MountPlan") == true)
        #expect(graph.edges["Plan"]?["Execute"] == nil)
    }
}

/// Which folder uses names declared in which other folder.
struct DependencyGraph {
    var folders: [String] = []
    /// folder → used folder → the names that make the edge.
    var edges: [String: [String: Set<String>]] = [:]

    init(root: URL) throws {
        let manager = FileManager.default
        var files: [(folder: String, text: String)] = []
        for folder in try manager.contentsOfDirectory(atPath: root.path).sorted() {
            var isDirectory: ObjCBool = false
            let path = root.appendingPathComponent(folder).path
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
                !folder.hasSuffix(".docc")
            else { continue }
            folders.append(folder)
            let enumerator = manager.enumerator(atPath: path)
            while let relative = enumerator?.nextObject() as? String {
                guard relative.hasSuffix(".swift") else { continue }
                let text = try String(contentsOfFile: path + "/" + relative, encoding: .utf8)
                files.append((folder, Self.code(text)))
            }
        }
        var declaredIn: [String: Set<String>] = [:]
        for file in files {
            for name in Self.declarations(file.text) { declaredIn[name, default: []].insert(file.folder) }
        }
        for file in files {
            for name in Set(Self.identifiers(file.text)) {
                guard let owners = declaredIn[name], owners.count == 1, let owner = owners.first,
                    owner != file.folder
                else { continue }
                edges[file.folder, default: [:]][owner, default: []].insert(name)
            }
        }
    }

    /// The source without comments and with string literals emptied (multi-line ones included).
    static func code(_ text: String) -> String {
        var out = ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        var inBlock = false
        while let line = lines.popFirst() {
            var result = ""
            var index = line.startIndex
            var inString = false
            while index < line.endIndex {
                let rest = line[index...]
                if inBlock {
                    if rest.hasPrefix("\"\"\"") {
                        inBlock = false; index = line.index(index, offsetBy: 3)
                    } else {
                        index = line.index(after: index)
                    }
                    continue
                }
                if inString {
                    if line[index] == "\\" {
                        index = line.index(index, offsetBy: 2, limitedBy: line.endIndex) ?? line.endIndex
                        continue
                    }
                    if line[index] == "\"" { inString = false; result.append("\"") }
                    index = line.index(after: index)
                    continue
                }
                if rest.hasPrefix("//") { break }
                if rest.hasPrefix("\"\"\"") {
                    inBlock = true
                    result.append("\"\"")
                    index = line.index(index, offsetBy: 3)
                    continue
                }
                if line[index] == "\"" { inString = true }
                result.append(line[index])
                index = line.index(after: index)
            }
            out += result + "\n"
        }
        return out
    }

    /// Names declared as types (at any depth) or as top-level functions, constants and variables.
    static func declarations(_ code: String) -> [String] {
        let typeKeywords: Set<Substring> = ["struct", "enum", "class", "protocol", "typealias", "actor"]
        let topKeywords: Set<Substring> = ["func", "let", "var"]
        var names: [String] = []
        for line in code.split(separator: "\n") {
            let topLevel = !(line.first?.isWhitespace ?? true)
            let words = line.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
            guard !words.contains("private") && !words.contains("fileprivate") else { continue }
            for (index, word) in words.enumerated().dropLast() {
                if typeKeywords.contains(word) || (topLevel && topKeywords.contains(word)) {
                    names.append(String(words[index + 1]))
                    break
                }
                if word == "extension" || word == "import" { break }
            }
        }
        return names
    }

    static func identifiers(_ code: String) -> [String] {
        code.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init)
    }
}
