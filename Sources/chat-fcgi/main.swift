import Foundation
import ChatApp

// Thin entry point: everything, including thread bodies, lives in the library (a thread body
// written here would be main-actor code).
exit(CommandLineTool.run(CommandLine.arguments))
