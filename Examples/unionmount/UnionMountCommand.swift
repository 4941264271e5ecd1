import ArgumentParser
import Foundation
import SystemPackage
import UnionMount

/// `unionmount`: build, mount, inspect and tear down union filesystems from the shell.
@main
struct UnionMountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount",
        abstract: "Build, mount, inspect and tear down union filesystems (overlayfs, aufs).",
        subcommands: [Demo.self, Mount.self, Unmount.self, Probe.self]
    )
}

/// Options every subcommand that prints shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (sorted keys) instead of text.")
    var json = false
}

/// Prints a value as JSON with sorted keys and unescaped slashes.
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Turns a library error into a failed exit (1) with the error's text on stderr.
func failing(_ error: UnionMountError) -> ExitCode {
    FileHandle.standardError.write(Data("unionmount: \(error)\n".utf8))
    return ExitCode(1)
}
