// A libtorch failure inside a command (for example `retina detect` on a 5000x1 image, whose resize gives height 0)
// used to dump a page of C++ frames; CliApp now prints its first line and exits with 1.
using System.CommandLine;
using RetinaSharp.Cli;

namespace RetinaSharp.Tests.BadInput;

public sealed class CliLibtorchErrorTests
{
    [Fact]
    public void Libtorch_error_prints_one_line_and_exits_1()
    {
        var root = new RootCommand("test");
        var boom = new Command("boom");
        boom.SetAction((Func<ParseResult, int>)(_ => throw new System.Runtime.InteropServices.ExternalException("Input and output sizes should be greater than 0\nframe #0: c10::Error")));
        root.Subcommands.Add(boom);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Invoke(root, ["boom"], output, error);
        Assert.Equal(CliApp.Failed, code);
        Assert.Contains("error: libtorch: Input and output sizes should be greater than 0", error.ToString());
        Assert.DoesNotContain("frame #0", error.ToString());
    }
}
