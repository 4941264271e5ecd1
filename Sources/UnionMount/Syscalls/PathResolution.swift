import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The path made absolute against the current working directory (lexically; symlinks are kept).
func absolute(_ path: FilePath) -> FilePath {
    guard !path.isAbsolute else { return path }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return buffer.withUnsafeBufferPointer { FilePath(platformString: $0.baseAddress!) }.pushing(path)
}

/// `realpath(3)` of the path, or `nil` when it cannot be resolved.
func canonicalPath(_ path: FilePath) -> FilePath? {
    guard let resolved = withPathCString(path, { realpath($0, nil) }) else { return nil }
    defer { free(resolved) }
    return FilePath(platformString: resolved)
}
