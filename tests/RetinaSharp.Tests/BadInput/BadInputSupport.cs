// Helpers of the bad-input regression tests: a temporary folder and the `retina` commands run in-process.
using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;

namespace RetinaSharp.Tests.BadInput;

/// <summary>A temporary folder, deleted at the end of a test.</summary>
internal sealed class Scratch : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "retina-badinput-" + Guid.NewGuid().ToString("N"));

    public Scratch() => Directory.CreateDirectory(Dir);

    /// <summary>Writes <paramref name="text"/> to <paramref name="name"/> under the folder and returns its full path.</summary>
    public string Write(string name, string text)
    {
        string path = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    public string this[string name] => Path.Combine(Dir, name);

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Runs `retina` sub-commands in-process through <see cref="CliApp.Invoke"/>, as Program.cs does.</summary>
internal static class Retina
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(DataCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Invoke(root, args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Asserts exit code 2, one "error:" message holding every fragment, and no stack trace.</summary>
    public static string AssertBadInput((int Code, string Out, string Err) r, params string[] fragments)
    {
        Assert.True(r.Code == CliApp.BadInput, $"exit code {r.Code}, stderr: {r.Err}, stdout: {r.Out}");
        string all = r.Err + r.Out;
        foreach (var f in fragments) Assert.Contains(f, all);
        Assert.DoesNotContain("   at ", all);
        return all;
    }
}
