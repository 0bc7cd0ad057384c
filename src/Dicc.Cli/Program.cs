namespace Dicc.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.WriteLine("dicc: the command-line verbs are not built yet.");
        return 1;
    }
}
