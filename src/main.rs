fn main() -> std::process::ExitCode {
    testrelay::commands::main()
}
