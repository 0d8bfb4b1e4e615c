Console.WriteLine("retina");
