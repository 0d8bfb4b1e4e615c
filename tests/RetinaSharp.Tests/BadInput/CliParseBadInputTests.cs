// Mistyped option values and absurd counts: System.CommandLine used to exit with 1 (and print the whole help), and
// `data fashion-scenes --train 2147483647` aborted the process with "Out of memory". Now: exit code 2 and one message.
namespace RetinaSharp.Tests.BadInput;

public sealed class CliParseBadInputTests
{
    [Fact]
    public void Non_numeric_option_value_is_bad_input_naming_option_and_value()
    {
        Retina.AssertBadInput(Retina.Run("data", "fashion-scenes", "--out", "unused", "--size", "abc"), "'abc'", "--size", "retina data fashion-scenes --help");
    }

    [Fact]
    public void Unknown_option_is_bad_input()
    {
        Retina.AssertBadInput(Retina.Run("eval", "--bogus"), "--bogus", "retina eval --help");
    }

    [Theory]
    [InlineData("--train", "2147483647")]
    [InlineData("--val", "2147483647")]
    [InlineData("--train", "-1")]
    public void Scene_count_out_of_range_is_refused_before_allocating(string option, string value)
    {
        using var s = new Scratch();
        Retina.AssertBadInput(Retina.Run("data", "fashion-scenes", "--out", s["scenes"], option, value), option, value, "1..1000000");
        Assert.False(Directory.Exists(s["scenes"]));
    }
}
