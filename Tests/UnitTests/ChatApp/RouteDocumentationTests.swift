import Foundation
import XCTest
@testable import ChatConfig
@testable import ChatApp

/// Every route the router serves is documented, and nothing else is: docs/openapi.yaml lists exactly
/// the router's paths (each with a GET and a POST operation), and docs/API.md names every route.
/// Adding a route without documenting it (or removing one without updating the docs) fails here.
final class RouteDocumentationTests: XCTestCase {

    /// The repository root: this file is Tests/UnitTests/ChatApp/RouteDocumentationTests.swift.
    private static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // App
        .deletingLastPathComponent() // UnitTests
        .deletingLastPathComponent() // Tests
        .deletingLastPathComponent()

    private func document(_ relativePath: String) throws -> String {
        let url = Self.root.appendingPathComponent(relativePath)
        do {
            return try String(contentsOf: url, encoding: .utf8)
        } catch {
            XCTFail("cannot read \(url.path): \(error)")
            throw error
        }
    }

    private func routerPaths() -> [String] {
        let (router, _, _) = Application.makeRouter(config: Config())
        return router.paths
    }

    /// The path keys of the `paths:` section, read minimally: lines of the form `  /some/path:`
    /// between a top-level `paths:` line and the next top-level key. For each path, the operations
    /// (`    get:`, `    post:` …) found under it.
    static func openAPIPaths(_ yaml: String) -> [(path: String, operations: Set<String>)] {
        var result: [(path: String, operations: Set<String>)] = []
        var inPaths = false
        for rawLine in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !line.hasPrefix(" ") {
                inPaths = line == "paths:"
                continue
            }
            guard inPaths else { continue }
            if isKeyLine(line, indent: 2), line.dropFirst(2).hasPrefix("/") {
                result.append((String(line.dropFirst(2).dropLast()), []))
            } else if isKeyLine(line, indent: 4), !result.isEmpty {
                result[result.count - 1].operations.insert(String(line.dropFirst(4).dropLast()))
            }
        }
        return result
    }

    /// `indent` spaces, then a key without spaces or colons, then a final colon (`^ {n}[^ :]+:$`).
    private static func isKeyLine(_ line: Substring, indent: Int) -> Bool {
        guard line.count > indent + 1, line.hasSuffix(":"),
              line.prefix(indent).allSatisfy({ $0 == " " }) else { return false }
        let key = line.dropFirst(indent).dropLast()
        return !key.contains(":") && !key.contains(" ")
    }

    func testOpenAPIListsExactlyTheRoutersPaths() throws {
        let documented = Self.openAPIPaths(try document("docs/openapi.yaml"))
        let documentedPaths = documented.map(\.path)
        XCTAssertFalse(documentedPaths.isEmpty, "no paths found under `paths:` in docs/openapi.yaml")
        XCTAssertEqual(documentedPaths.count, Set(documentedPaths).count, "a path is listed twice in docs/openapi.yaml")

        let routes = Set(routerPaths())
        let missing = routes.subtracting(documentedPaths).sorted()
        let extra = Set(documentedPaths).subtracting(routes).sorted()
        XCTAssertEqual(missing, [], "routes without an entry in docs/openapi.yaml")
        XCTAssertEqual(extra, [], "docs/openapi.yaml documents paths the router does not have")
    }

    func testOpenAPIDocumentsGetAndPostForEveryPath() throws {
        for entry in Self.openAPIPaths(try document("docs/openapi.yaml")) {
            XCTAssertEqual(entry.operations, ["get", "post"], "\(entry.path): every route answers GET and POST alike")
        }
    }

    func testAPIMarkdownNamesEveryRoute() throws {
        let markdown = try document("docs/API.md")
        let undocumented = routerPaths().filter { !markdown.contains("`\($0)`") }
        XCTAssertEqual(undocumented, [], "routes not named (as `/path`) in docs/API.md")
    }

    func testMinimalYAMLReaderOnlyReadsThePathsSection() {
        let yaml = """
            openapi: 3.0.3
            info:
              title: x
              /not/a/path:
            paths:
              /a:
                get:
                  summary: 'x: y'
                post:
              /b/c:
                get:
            components:
              schemas:
              /not/either:
            """
        let parsed = Self.openAPIPaths(yaml)
        XCTAssertEqual(parsed.map(\.path), ["/a", "/b/c"])
        XCTAssertEqual(parsed.first?.operations, ["get", "post"])
        XCTAssertEqual(parsed.last?.operations, ["get"])
    }
}
